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


M_ARENA_MAX, M_MMAP_THRESHOLD = -8, -3   # glibc's mallopt parameters (malloc.h)
MMAP_THRESHOLD = 1 << 20


def settle_malloc() -> bool:
    """Set glibc's allocator for a long streaming job; False where that is not glibc.

    * One arena (``M_ARENA_MAX`` 1): each thread that meets a lock creates its own arena (up
      to 8 per core), and memory freed in one arena is not reused by another: at 1080p with
      all effects the decoder's, the key's, the effects' and the encoder's threads left ~15 MB
      more private memory (8 MB key only) for the same CPU time (medians of 5, one core and two).
    * A fixed mmap threshold of 1 MiB (``M_MMAP_THRESHOLD``): glibc raises it, by default, to
      the size of every large block freed (up to 32 MB), so frame-sized buffers move into the
      heap, whose top cannot shrink past a live block; between libx264's packets of every size
      the heap then grew in steps, 2-5 MB over 960 frames of 720p .mp4 with all effects (the
      leak signal ``make memcheck`` watches). Fixed, blocks of 1 MiB and more are mapped and
      unmapped on their own, and the run is flat. The buffers a job uses every frame are
      allocated once (stage buffers, rings, the encoder's frames), so few blocks pay for it.

    Call it before the threads start; it changes the whole process, so the CLI does, not the
    library."""
    if not sys.platform.startswith("linux"):
        return False
    import ctypes

    try:
        libc = ctypes.CDLL(None)
        return bool(libc.mallopt(M_ARENA_MAX, 1)) and bool(libc.mallopt(M_MMAP_THRESHOLD,
                                                                       MMAP_THRESHOLD))
    except (OSError, AttributeError):   # musl and others: no mallopt, or no such parameter
        return False


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


def anon_mb() -> float | None:
    """Anonymous resident memory (heap, buffers, compiled code), Linux only: the part of RSS that
    does not depend on how many library file pages the page cache happens to map."""
    return status_mb().get("anon")


def peak_rss_mb() -> float:
    """The process's peak resident set size so far (kernel high-water mark).

    Linux: ``VmHWM``, this process's own. Not ``ru_maxrss``, which survives ``execve``: a job
    started by a big parent (a worker, a test runner) would report the parent's peak as its own.
    """
    hwm = status_mb().get("hwm")
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
        now = status_mb()     # one read of /proc/self/status; psutil where there is none
        rss, vms = (now["rss"], now["vms"]) if "vms" in now else rss_vms_mb()
        self.peak_vms = max(self.peak_vms, vms)
        event.setdefault("rss_mb", round(rss, 1))
        event.setdefault("vms_mb", round(vms, 1))
        if "anon" in now:
            event.setdefault("anon_mb", round(now["anon"], 1))
        event.setdefault("peak_rss_mb", round(now["hwm"] if "hwm" in now else peak_rss_mb(), 1))
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


def status_mb() -> dict[str, float]:
    """This process's memory by kind now, in MB, from one read of /proc/self/status: ``rss``,
    ``vms``, ``anon`` (private: heap, buffers, compiled code), ``file`` (library and other file pages,
    shareable between processes), ``shmem`` and ``hwm`` (the peak RSS). Empty without /proc."""
    fields = {b"VmRSS:": "rss", b"VmSize:": "vms", b"RssAnon:": "anon", b"RssFile:": "file",
              b"RssShmem:": "shmem", b"VmHWM:": "hwm"}
    out: dict[str, float] = {}
    try:
        with open("/proc/self/status", "rb") as fh:
            for line in fh:
                key = fields.get(line.split(b" ", 1)[0].split(b"\t", 1)[0])
                if key:
                    out[key] = int(line.split()[1]) / 1024
    except OSError:
        pass
    return out


def libraries_mb(top: int = 12) -> dict[str, float]:
    """Resident pages of each mapped file (by its name: ``libllvmlite.so``, ``cv2.abi3.so``),
    the ``top`` largest, from /proc/self/smaps (a few ms: read at a job's start and end)."""
    sizes: dict[str, float] = {}
    name = None
    try:
        with open("/proc/self/smaps", "rb") as fh:
            for line in fh:
                first = line.split(None, 6)
                if first and b"-" in first[0] and len(first) >= 5 and not first[0].endswith(b":"):
                    path = first[5].strip() if len(first) > 5 else b""
                    name = path.rsplit(b"/", 1)[-1].decode("utf-8", "replace") if path.startswith(b"/") else None
                elif name and line.startswith(b"Rss:"):
                    sizes[name] = sizes.get(name, 0.0) + int(line.split()[1]) / 1024
    except OSError:
        return {}
    ranked = sorted(sizes.items(), key=lambda kv: -kv[1])[:top]
    return {k: round(v, 1) for k, v in ranked}


def owned_bytes(obj: Any, _seen: set | None = None, _depth: int = 6) -> int:
    """Bytes of the numpy arrays and ``av.VideoFrame`` pictures ``obj`` holds, through its
    attributes, lists, tuples and dicts; each buffer counted once (a view counts as the array it
    views). What a stage or a bound effect allocated when it was made."""
    import numpy as np

    seen = set() if _seen is None else _seen
    if id(obj) in seen or _depth < 0:
        return 0
    seen.add(id(obj))
    if isinstance(obj, np.ndarray):
        root = obj
        while isinstance(root.base, np.ndarray):
            root = root.base
        if root is not obj:
            return owned_bytes(root, seen, _depth)
        return obj.nbytes if obj.base is None else 0   # a view of a buffer owned elsewhere
    kind = type(obj).__name__
    if kind == "VideoFrame" and hasattr(obj, "planes"):
        return sum(p.buffer_size for p in obj.planes)
    if isinstance(obj, (str, bytes, int, float, bool, type(None))) or callable(obj) and not hasattr(obj, "__dict__"):
        return 0
    if isinstance(obj, dict):
        values = obj.values()
    elif isinstance(obj, (list, tuple, set, frozenset)):
        values = obj
    else:
        values = list(getattr(obj, "__dict__", {}).values())
        for cls in type(obj).__mro__:
            for slot in getattr(cls, "__slots__", ()):
                if hasattr(obj, slot):
                    values.append(getattr(obj, slot))
        if type(obj).__module__.split(".")[0] not in ("keyer", "__main__", "tests"):
            return 0     # another library's object: its memory is that library's
    return sum(owned_bytes(v, seen, _depth - 1) for v in values)
