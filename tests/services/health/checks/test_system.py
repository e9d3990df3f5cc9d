"""The host check, on this machine's real figures and on crafted samples for the thresholds."""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace
from typing import NamedTuple

from app.services.health.checks import run_check
from app.services.health.checks.context import CheckContext
from app.services.health.checks.system import (
    CpuMeter,
    DiskUse,
    SystemSample,
    SystemTarget,
    judge_system,
)
from app.vocabulary.health import ComponentStatus

TARGET = SystemTarget(kind="system")

CALM = SystemSample(
    cpu_percent=12.0,
    cpu_count=2,
    memory_percent=40.0,
    memory_used_bytes=4_000,
    memory_total_bytes=10_000,
    swap_percent=0.0,
    swap_used_bytes=0,
    swap_total_bytes=8_000,
    disks=[DiskUse("/", 50.0, 50, 100), DiskUse("/data", 10.0, 10, 100)],
    load_average=(0.5, 0.4, 0.3),
    process_count=120,
    uptime_s=3600.0,
)


class TestOnThisMachine:
    async def test_reports_every_figure_with_sane_values(self) -> None:
        result = await run_check(TARGET)
        details = result.details
        assert result.kind == "system"
        # Any rating can be true on a busy machine; a figure it could not read cannot.
        assert result.status is not ComponentStatus.UNKNOWN
        assert 0 <= details["cpu_percent"] <= 100
        assert 0 < details["memory_percent"] < 100
        assert details["memory_total_bytes"] > details["memory_used_bytes"] > 0
        assert details["disks"] and all(0 < disk["percent"] <= 100 for disk in details["disks"])
        assert len(details["load_average"]) == 3
        assert details["process_count"] > 1
        assert details["uptime_s"] > 0
        assert "%" in result.message  # every figure when healthy, the offenders otherwise

    async def test_does_not_block_the_event_loop_while_sampling(self) -> None:
        gaps: list[float] = []

        async def tick() -> None:
            last = time.perf_counter()
            for _ in range(20):
                await asyncio.sleep(0.01)
                now = time.perf_counter()
                gaps.append(now - last)
                last = now

        await asyncio.gather(run_check(TARGET), tick())
        assert max(gaps) < 0.1  # the CPU sample alone takes 0.25 s

    async def test_a_named_disk_that_does_not_exist_is_unhealthy(self) -> None:
        target = SystemTarget(kind="system", disks=["/no/such/mount"])
        result = await run_check(target)
        assert result.status is ComponentStatus.UNHEALTHY
        assert "FileNotFoundError" in result.message


class TestThresholds:
    def test_a_calm_host_is_healthy_and_says_its_figures(self) -> None:
        finding = judge_system(CALM, TARGET, 250.0)
        assert finding.status is ComponentStatus.HEALTHY
        assert (
            finding.message == "cpu 12.0%, memory 40.0%, swap 0.0%, disk / 50.0%, disk /data 10.0%"
        )

    def test_memory_past_80_percent_degrades(self) -> None:
        finding = judge_system(replace(CALM, memory_percent=86.0), TARGET, 250.0)
        assert finding.status is ComponentStatus.DEGRADED
        assert finding.message == "memory 86.0% >= 80%"

    def test_a_full_disk_is_unhealthy_and_named(self) -> None:
        disks = [DiskUse("/", 50.0, 50, 100), DiskUse("/data", 97.5, 97, 100)]
        finding = judge_system(replace(CALM, disks=disks), TARGET, 250.0)
        assert finding.status is ComponentStatus.UNHEALTHY
        assert finding.message == "disk /data 97.5% >= 95%"
        assert finding.details["disk_percent"] == 97.5

    def test_full_swap_only_degrades(self) -> None:
        finding = judge_system(replace(CALM, swap_percent=99.0), TARGET, 250.0)
        assert finding.status is ComponentStatus.DEGRADED

    def test_thresholds_are_configurable(self) -> None:
        strict = SystemTarget(kind="system", degraded_percent=10, unhealthy_percent=45)
        finding = judge_system(CALM, strict, 250.0)
        assert finding.status is ComponentStatus.UNHEALTHY
        assert finding.message == (
            "cpu 12.0% >= 10%; memory 40.0% >= 10%; disk / 50.0% >= 45%; disk /data 10.0% >= 10%"
        )

    def test_a_pegged_cpu_only_degrades_the_host(self) -> None:
        finding = judge_system(replace(CALM, cpu_percent=100.0), TARGET, 250.0)

        assert finding.status is ComponentStatus.DEGRADED
        assert finding.message == "cpu 100.0% >= 80%"

    def test_memory_nearly_full_only_degrades_the_host(self) -> None:
        finding = judge_system(replace(CALM, memory_percent=99.0), TARGET, 250.0)

        assert finding.status is ComponentStatus.DEGRADED


class _FakeCpu:
    """cpu_times() readings the test hands out one by one."""

    def __init__(self, *readings: tuple[float, float]) -> None:
        self.readings = list(readings)
        self.waits: list[float] = []

    def times(self) -> _Times:
        busy, idle = self.readings.pop(0)
        return _Times(user=busy, idle=idle)

    def wait(self, seconds: float) -> None:
        self.waits.append(seconds)


class _Times(NamedTuple):
    user: float
    idle: float


class TestCpuOverTheInterval:
    def test_the_first_reading_samples_a_short_window(self) -> None:
        fake = _FakeCpu((10.0, 90.0), (10.2, 90.3))
        meter = CpuMeter(times=fake.times, wait=fake.wait)

        assert meter.percent() == 40.0
        assert fake.waits == [0.25]

    def test_later_readings_cover_the_whole_interval_since_the_last(self) -> None:
        # A 0.25 s burst at 100% inside a minute that was otherwise idle.
        fake = _FakeCpu((0.0, 0.0), (0.0, 1.0), (0.25, 60.75))
        meter = CpuMeter(times=fake.times, wait=fake.wait)
        meter.percent()

        assert meter.percent() == 0.4
        assert fake.waits == [0.25]

    async def test_each_sweep_reads_cpu_against_the_previous_one(self) -> None:
        fake = _FakeCpu((0.0, 0.0), (1.0, 1.0), (1.3, 60.7))
        async with CheckContext() as context:
            context.shared(("system", "cpu"), lambda: CpuMeter(times=fake.times, wait=fake.wait))
            first = await run_check(TARGET, context)
            second = await run_check(TARGET, context)

        assert [first.details["cpu_percent"], second.details["cpu_percent"]] == [50.0, 0.5]
        assert second.status is not ComponentStatus.UNHEALTHY
