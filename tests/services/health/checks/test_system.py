"""The host check, on this machine's real figures and on crafted samples for the thresholds."""

from __future__ import annotations

import asyncio
import threading
from dataclasses import replace
from typing import Any, NamedTuple

import psutil

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
DEADLINE_S = 10.0  # against hanging, never a speed claim

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

    async def test_samples_off_the_event_loop(self) -> None:
        # The sample holds until the event loop has answered from outside it: taken on the
        # loop's own thread, it would wait for itself and fail the check at the deadline.
        loop = asyncio.get_running_loop()
        sampling = asyncio.Event()
        loop_answered = threading.Event()

        def cpu_times() -> Any:
            loop.call_soon_threadsafe(sampling.set)
            if not loop_answered.wait(timeout=DEADLINE_S):
                raise AssertionError("the event loop never answered during the sample")
            return psutil.cpu_times()

        async with CheckContext() as context:
            context.shared(("system", "cpu"), lambda: CpuMeter(times=cpu_times))
            checking = asyncio.create_task(run_check(TARGET, context))
            await asyncio.wait_for(sampling.wait(), DEADLINE_S)
            loop_answered.set()
            result = await checking

        assert result.status is not ComponentStatus.UNKNOWN, result.message

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
    """cpu_times() readings the test hands out one by one, each at its own moment."""

    def __init__(self, *readings: tuple[float, float, float]) -> None:
        self.readings = list(readings)

    def times(self) -> _Times:
        _, busy, idle = self.readings.pop(0)
        return _Times(user=busy, idle=idle)

    def clock(self) -> float:
        return self.readings[0][0]  # read just before the reading it goes with


class _Times(NamedTuple):
    user: float
    idle: float


class TestCpuOverTheInterval:
    def test_the_first_reading_covers_the_time_since_boot_without_waiting(self) -> None:
        fake = _FakeCpu((0.0, 10.0, 90.0))
        meter = CpuMeter(times=fake.times, clock=fake.clock)

        assert meter.percent() == 10.0

    def test_later_readings_cover_the_whole_interval_since_the_last(self) -> None:
        # A 0.25 s burst at 100% inside a minute that was otherwise idle.
        fake = _FakeCpu((0.0, 0.0, 1.0), (60.0, 0.25, 60.75))
        meter = CpuMeter(times=fake.times, clock=fake.clock)
        meter.percent()

        assert meter.percent() == 0.4

    def test_a_reading_right_after_another_is_read_against_an_older_one(self) -> None:
        # 0.1 s after the last reading is too short to rate: the minute before counts.
        fake = _FakeCpu((0.0, 10.0, 90.0), (60.0, 40.0, 120.0), (60.1, 40.1, 120.0))
        meter = CpuMeter(times=fake.times, clock=fake.clock)
        meter.percent()
        meter.percent()

        assert meter.percent() == 50.1

    async def test_each_sweep_reads_cpu_against_the_previous_one(self) -> None:
        fake = _FakeCpu((0.0, 1.0, 1.0), (60.0, 1.3, 60.7))
        async with CheckContext() as context:
            context.shared(("system", "cpu"), lambda: CpuMeter(times=fake.times, clock=fake.clock))
            first = await run_check(TARGET, context)
            second = await run_check(TARGET, context)

        assert [first.details["cpu_percent"], second.details["cpu_percent"]] == [50.0, 0.5]
        assert second.status is not ComponentStatus.UNHEALTHY
