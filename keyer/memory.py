"""Process memory readings, and the structlog processor that stamps them on every event.

Reading RSS/VMS is one ``/proc/self/statm`` read, a few microseconds; psutil is imported only
where there is no ``/proc`` (importing it costs ~15 ms of every run's start-up). The lifetime
peak RSS comes from ``getrusage`` (the kernel's own high-water mark, so a spike between two
samples is not missed).
"""
from __future__ import annotations

import functools
import os
import re
import resource
import sys
from typing import Any

MB = 1024 * 1024
_STATM = "/proc/self/statm"
_HAVE_STATM = os.path.exists(_STATM)
_PAGE = os.sysconf("SC_PAGE_SIZE") if _HAVE_STATM else 0


def rss_vms_mb() -> tuple[float, float]:
    """Resident and virtual size of this process now, in MB."""
    if _HAVE_STATM:
        with open(_STATM, "rb") as fh:
            vms_pages, rss_pages = fh.read().split()[:2]
        return int(rss_pages) * _PAGE / MB, int(vms_pages) * _PAGE / MB
    info = _process().memory_info()
    return info.rss / MB, info.vms / MB


@functools.cache
def _process() -> Any:
    import psutil

    return psutil.Process()


def _status_mb(field: bytes) -> float | None:
    """One ``kB`` field of /proc/self/status in MB (None where there is no /proc)."""
    try:
        with open("/proc/self/status", "rb") as fh:
            for line in fh:
                if line.startswith(field):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def anon_mb() -> float | None:
    """Anonymous resident memory (heap, buffers, compiled code), Linux only: the part of RSS that
    does not depend on how many library file pages the page cache happens to map."""
    return _status_mb(b"RssAnon:")


def peak_rss_mb() -> float:
    """The process's peak resident set size so far (kernel high-water mark).

    Linux: ``VmHWM``, this process's own. Not ``ru_maxrss``, which survives ``execve``: a job
    started by a big parent (a worker, a test runner) would report the parent's peak as its own.
    """
    hwm = _status_mb(b"VmHWM:")
    if hwm is not None:
        return hwm
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 1024 if sys.platform != "darwin" else peak / MB


class MemoryStamp:
    """structlog processor: adds ``rss_mb``, ``vms_mb``, ``anon_mb``, ``peak_rss_mb``,
    ``peak_vms_mb``."""

    def __init__(self) -> None:
        self.peak_vms = 0.0

    def __call__(self, logger: Any, method: str, event: dict) -> dict:
        rss, vms = rss_vms_mb()
        self.peak_vms = max(self.peak_vms, vms)
        event.setdefault("rss_mb", round(rss, 1))
        event.setdefault("vms_mb", round(vms, 1))
        anon = anon_mb()
        if anon is not None:
            event.setdefault("anon_mb", round(anon, 1))
        event.setdefault("peak_rss_mb", round(peak_rss_mb(), 1))
        event.setdefault("peak_vms_mb", round(self.peak_vms, 1))
        return event


_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(i?b?)?\s*$", re.IGNORECASE)
_UNITS = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4}


def parse_size(text: str) -> int:
    """Parse ``1.5G``, ``800M``, ``800MB``, ``512MiB`` or a byte count into bytes.

    >>> parse_size("1.5G") == 1536 * 1024 * 1024
    True
    """
    m = _SIZE.match(str(text))
    if not m:
        raise ValueError(f"'{text}' is not a size (try 800M or 1.5G)")
    return int(float(m.group(1)) * _UNITS[m.group(2).lower()])
