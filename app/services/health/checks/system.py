"""The host check: CPU, memory, swap and disks rated by percent used, plus load and uptime.

psutil may block (disks may be slow network mounts), so the whole sample is taken in a
worker thread and the event loop never waits. CPU is the busy share of the whole interval
since an earlier sweep, never a sample anyone waits for (see ``CpuMeter``); busy CPU or memory
at worst degrades the host (held use is the resource alert rule's to judge), while a full
disk may make it unhealthy.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any, Literal

import psutil
from pydantic import Field

from app.schemas.targets import PercentThresholds, Target
from app.services.health.checks.base import CheckKind, Finding, Gauge, elapsed_ms, rate_gauges
from app.services.health.checks.context import CheckContext
from app.vocabulary.health import ComponentKind, ComponentStatus

# Busy CPU time is counted in ticks of 10 ms: a shorter span reads 0% or 100% by chance.
MIN_WINDOW_S = 1.0
_SHARED_METER = ("system", "cpu")


class SystemTarget(Target, PercentThresholds):
    """The machine Watchkeeper runs on: CPU, memory, swap and disks rated by percent used."""

    kind: Literal[ComponentKind.SYSTEM] = ComponentKind.SYSTEM
    name: str = Field(default="system", min_length=1, max_length=100)
    disks: list[str] | None = Field(
        default=None, description="Mount points to rate; default every physical partition."
    )


@dataclass(frozen=True, slots=True)
class DiskUse:
    mountpoint: str
    percent: float
    used_bytes: int
    total_bytes: int


@dataclass(frozen=True, slots=True)
class SystemSample:
    """One reading of the host, taken in a thread."""

    cpu_percent: float
    cpu_count: int
    memory_percent: float
    memory_used_bytes: int
    memory_total_bytes: int
    swap_percent: float
    swap_used_bytes: int
    swap_total_bytes: int
    disks: list[DiskUse]
    load_average: tuple[float, float, float]
    process_count: int
    uptime_s: float


def _busy_and_total(times: Any) -> tuple[float, float]:
    """Busy and total CPU seconds of a ``psutil.cpu_times()`` reading, as psutil counts them."""
    total = sum(times)
    # Linux counts guest time inside user and nice already.
    total -= getattr(times, "guest", 0.0) + getattr(times, "guest_nice", 0.0)
    idle = times.idle + getattr(times, "iowait", 0.0)
    return total - idle, total


class CpuMeter:
    """CPU use over the time since an earlier reading: the whole sweep interval.

    A momentary sample of a busy host reads 100% for a quarter of a second that means
    nothing; the share of the interval the CPU was busy is what the sweep should report.
    The meter lives in the check context, so each sweep reads against an earlier one: the
    newest at least ``MIN_WINDOW_S`` old (a shorter span is too few clock ticks to rate).
    Without one, the first reading of a process, the counters are taken from zero: the
    busy share since boot. Nobody ever waits for a sample.
    """

    def __init__(
        self,
        times: Callable[[], Any] = psutil.cpu_times,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._times = times
        self._clock = clock
        # (when, busy, total) of recent readings, oldest first.
        self._readings: deque[tuple[float, float, float]] = deque()

    def percent(self) -> float:
        """Busy share since the newest reading old enough (since boot without one), 0..100."""
        now = self._clock()
        busy, total = _busy_and_total(self._times())
        while len(self._readings) > 1 and now - self._readings[1][0] >= MIN_WINDOW_S:
            self._readings.popleft()
        base = self._readings[0] if self._readings else None
        if base is None or now - base[0] < MIN_WINDOW_S:
            base = (now, 0.0, 0.0)
        self._readings.append((now, busy, total))
        _, last_busy, last_total = base
        elapsed = total - last_total
        if elapsed <= 0:
            return 0.0
        return round(min(max((busy - last_busy) / elapsed * 100, 0.0), 100.0), 1)

    async def aclose(self) -> None:
        """Nothing to release; the context closes what it shares."""


def _physical_mountpoints() -> list[str]:
    seen_devices: set[str] = set()
    mountpoints: list[str] = []
    for partition in psutil.disk_partitions(all=False):
        # Bind mounts show one device several times; rate it once.
        if partition.device in seen_devices:
            continue
        seen_devices.add(partition.device)
        mountpoints.append(partition.mountpoint)
    return mountpoints or ["/"]


def _disk_uses(mountpoints: list[str] | None) -> list[DiskUse]:
    chosen = mountpoints if mountpoints is not None else _physical_mountpoints()
    uses = []
    for mountpoint in chosen:
        try:
            usage = psutil.disk_usage(mountpoint)
        except PermissionError:
            if mountpoints is not None:
                raise  # a disk the operator named must be readable
            continue
        uses.append(DiskUse(mountpoint, usage.percent, usage.used, usage.total))
    return uses


def sample_system(cpu: CpuMeter, mountpoints: list[str] | None = None) -> SystemSample:
    """Read the host's figures (none of them waits for a sample)."""
    memory = psutil.virtual_memory()
    swap = psutil.swap_memory()
    return SystemSample(
        cpu_percent=cpu.percent(),
        cpu_count=psutil.cpu_count() or 1,
        memory_percent=memory.percent,
        # "available" rather than "used": page cache the kernel can reclaim is not pressure.
        memory_used_bytes=memory.total - memory.available,
        memory_total_bytes=memory.total,
        swap_percent=swap.percent,
        swap_used_bytes=swap.used,
        swap_total_bytes=swap.total,
        disks=_disk_uses(mountpoints),
        load_average=psutil.getloadavg(),
        process_count=len(psutil.pids()),
        uptime_s=round(time.time() - psutil.boot_time(), 1),
    )


def _gauges(sample: SystemSample) -> list[Gauge]:
    # Busy CPU and memory come and go: at worst they degrade the host, and use held over
    # a threshold is the resource alert rule's to judge. A full disk stays full and fails
    # writes, so it alone may make the host unhealthy.
    degraded = ComponentStatus.DEGRADED
    gauges = [
        Gauge("cpu", sample.cpu_percent, cap=degraded),
        Gauge("memory", sample.memory_percent, cap=degraded),
    ]
    if sample.swap_total_bytes:
        gauges.append(Gauge("swap", sample.swap_percent, cap=degraded))
    gauges += [Gauge(f"disk {disk.mountpoint}", disk.percent) for disk in sample.disks]
    return gauges


def _details(sample: SystemSample) -> dict[str, Any]:
    details = asdict(sample)
    details["load_average"] = list(sample.load_average)
    details["load_per_cpu"] = round(sample.load_average[0] / sample.cpu_count, 2)
    details["disk_percent"] = max((disk.percent for disk in sample.disks), default=0.0)
    return details


def judge_system(sample: SystemSample, target: SystemTarget, latency_ms: float) -> Finding:
    """Rate a host sample against the target's thresholds."""
    status, summary = rate_gauges(_gauges(sample), target)
    return Finding(status, latency_ms, summary, _details(sample))


async def probe(target: SystemTarget, context: CheckContext) -> Finding:
    """Sample the host in a thread and rate it."""
    started = time.perf_counter()
    cpu = context.shared(_SHARED_METER, CpuMeter)
    sample = await asyncio.to_thread(sample_system, cpu, target.disks)
    return judge_system(sample, target, elapsed_ms(started))


KIND = CheckKind(
    target=SystemTarget,
    probe=probe,
    failures=(psutil.Error, OSError),
    component_type="system",
)
