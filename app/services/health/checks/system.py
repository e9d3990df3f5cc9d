"""The host check: CPU, memory, swap and disks rated by percent used, plus load and uptime.

psutil blocks (the CPU figure needs a short sampling window, disks may be slow network
mounts), so the whole sample is taken in a worker thread and the event loop never waits.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import asdict, dataclass
from typing import Any, Literal

import psutil
from pydantic import Field

from app.schemas.targets import PercentThresholds, Target
from app.services.health.checks.base import CheckKind, Finding, Gauge, elapsed_ms, rate_gauges
from app.services.health.checks.context import CheckContext
from app.vocabulary.health import ComponentKind, ComponentStatus

# A fresh window rather than psutil's "since the last call" figure, which is meaningless on
# the first call and depends on whoever else in the process last asked.
_CPU_WINDOW_S = 0.25


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


def sample_system(mountpoints: list[str] | None = None) -> SystemSample:
    """Read the host's figures; blocks for about a quarter of a second."""
    memory = psutil.virtual_memory()
    swap = psutil.swap_memory()
    return SystemSample(
        cpu_percent=psutil.cpu_percent(interval=_CPU_WINDOW_S),
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
    gauges = [Gauge("cpu", sample.cpu_percent), Gauge("memory", sample.memory_percent)]
    if sample.swap_total_bytes:
        # Full swap with free memory is a warning sign, not an outage: at worst degraded.
        gauges.append(Gauge("swap", sample.swap_percent, cap=ComponentStatus.DEGRADED))
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
    sample = await asyncio.to_thread(sample_system, target.disks)
    return judge_system(sample, target, elapsed_ms(started))


KIND = CheckKind(
    target=SystemTarget,
    probe=probe,
    failures=(psutil.Error, OSError),
    component_type="system",
)
