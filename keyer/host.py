"""What this machine, and the container keyer runs in, give a job: cores and memory.

The one place that reads cgroups (v2, else v1): ``available_cores`` for the thread plan
(``keyer.threads.ThreadPlan``) and ``memory_limit_bytes`` for the default memory budget.
"""
from __future__ import annotations

import math
import os
from pathlib import Path

CGROUP = Path("/sys/fs/cgroup")


def _cgroup_text(*names: str) -> str | None:
    """The joined text of the first cgroup control files that all exist (``names`` are
    alternatives: one file, or several joined with ``+``), else None."""
    for name in names:
        try:
            return " ".join((CGROUP / part).read_text().strip() for part in name.split("+"))
        except OSError:
            continue
    return None


def available_cores() -> int:
    """CPUs this process may use: its affinity mask, capped by a container's CPU quota
    (cgroup v2 ``cpu.max`` or v1 ``cpu.cfs_quota_us``), rounded up, and by ``KEYER_CORES``
    (the share of the cores ``keyer batch`` gives each job; ignored unless a positive integer)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    text = _cgroup_text("cpu.max", "cpu/cpu.cfs_quota_us+cpu/cpu.cfs_period_us")
    quota = cpu_quota(text) if text else None
    cores = max(1, min(cores, quota)) if quota else cores
    share = os.environ.get(CORES_ENV, "")
    return min(cores, int(share)) if share.isdigit() and int(share) > 0 else cores


CORES_ENV = "KEYER_CORES"


def cpu_quota(text: str) -> int | None:
    """Cores a cgroup CPU quota allows ("QUOTA PERIOD" in microseconds, rounded up); None when
    unlimited ("max", or v1's -1) or unreadable."""
    try:
        quota, period = text.split()[:2]
        quota_us, period_us = int(quota), int(period)
    except ValueError:
        return None
    if quota_us <= 0 or period_us <= 0:
        return None
    return max(1, math.ceil(quota_us / period_us))


def memory_limit_bytes() -> int | None:
    """The container's memory limit (cgroup v2 ``memory.max`` or v1 ``limit_in_bytes``), or
    None when unlimited or unknown."""
    raw = _cgroup_text("memory.max", "memory/memory.limit_in_bytes")
    if raw is None or raw == "max":
        return None
    try:
        value = int(raw)
    except ValueError:
        return None
    # v1 reports "unlimited" as a huge page-aligned number
    if value >= 1 << 60 or value >= physical_memory() * 4:
        return None
    return value


def physical_memory() -> int:
    """Bytes of RAM in the machine (POSIX)."""
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
