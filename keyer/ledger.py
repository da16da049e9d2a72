"""The memory ledger: which part of a job holds the process's memory, logged as ``memory_owners``.

Every owner is measured where it can be, and the rest is named as what remains:

* ``libraries`` -- file-backed pages (the code of av, cv2, llvmlite, numpy, Python): shared
  between processes, so a batch pays them once. At the job's start and end the event also
  lists the largest files (``libraries_mb``).
* ``interpreter`` -- private memory when the job starts: Python, the imported modules and their
  state (the start of the job, after ``import keyer`` and the probe).
* ``kernels`` -- private memory added by loading (or compiling) the job's Numba kernels.
* ``stages`` -- the buffers the stages and the bound effects allocated when they were made,
  exact (``keyer.memory.owned_bytes``); ``stage_bytes`` breaks it down by stage and effect.
* ``frames`` -- decoded pictures the queues may hold at once (the pipeline's bounds).
* ``decoder`` -- what the decoder took to open and decode one frame, measured in the probe.
* ``encoder`` -- what remains once the others are counted, the most of it at any sample of
  the first ``SETTLE_FRAMES`` frames: the encoder's state, references and look-ahead (libx264
  keeps growing for ~40 frames at 1080p: fixed at the first sample, ~37 MB of it showed as
  unattributed), the decoder's frame threads, libraries' own heaps. Fixed from then on.
* ``unattributed`` -- private memory beyond all of those at a later sample: the leak and
  fragmentation signal (0 until the encoder's part is fixed; it should stay near 0).

The owners sum to the RSS measured at that moment (``rss_mb``). Private memory is
``anon_mb``; shared, ``file_mb``.
"""
from __future__ import annotations

from typing import Any

from keyer.memory import MB, libraries_mb, owned_bytes, status_mb

SETTLE_FRAMES = 64   # frames over which the encoder's part is still growing (look-ahead, threads)


class Ledger:
    """Collects one job's owners; the runner feeds it and asks it to log."""

    def __init__(self, log: Any, decoder_mb: float | None) -> None:
        self.log = log
        start = status_mb()
        self.available = "anon" in start
        self.interpreter = start.get("anon", 0.0)
        self.decoder = max(0.0, decoder_mb or 0.0)
        self.kernels = 0.0
        self.stage_bytes: dict[str, int] = {}
        self.frame_bytes = 0
        self.encoder: float | None = None     # the most seen, until SETTLE_FRAMES
        self._seen: set = set()               # buffers counted already: each counts once

    def loaded_kernels(self, anon_before: float, anon_after: float) -> None:
        self.kernels = max(0.0, anon_after - anon_before)

    def holds(self, name: str, obj: Any, besides: tuple = ()) -> None:
        """Note the buffers ``obj`` (a stage or a bound effect) holds, under ``name``: those not
        noted under an earlier name, nor held by ``besides`` (noted under names of their own)."""
        self._seen.update(id(b) for b in besides)
        self._seen.discard(id(obj))
        self.stage_bytes[name] = owned_bytes(obj, self._seen)

    def in_flight(self, nbytes: int) -> None:
        """Note the most bytes of decoded pictures the queues can hold at once."""
        self.frame_bytes = nbytes

    def owners(self, settle: bool = False) -> dict[str, Any]:
        """The owners now, in MB, with the RSS and its private/shared split. Before frames flow
        (``in_flight`` not yet noted) the decoder and encoder hold nothing; a call with
        ``settle`` raises the encoder's part to what remains, if more."""
        now = status_mb()
        anon, shared = now.get("anon", 0.0), now.get("file", 0.0) + now.get("shmem", 0.0)
        stages = sum(self.stage_bytes.values()) / MB
        decoder = self.decoder if self.frame_bytes else 0.0
        known = self.interpreter + self.kernels + stages + self.frame_bytes / MB + decoder
        if settle and self.frame_bytes:
            self.encoder = max(self.encoder or 0.0, anon - known)
        encoder = self.encoder or 0.0
        owners = {"libraries": shared, "interpreter": self.interpreter, "kernels": self.kernels,
                  "stages": stages, "frames": self.frame_bytes / MB, "decoder": decoder,
                  "encoder": encoder, "unattributed": anon - known - encoder}
        return {"owners": {k: round(v, 1) for k, v in owners.items()},
                "stage_bytes": dict(self.stage_bytes), "anon_mb": round(anon, 1),
                "file_mb": round(shared, 1), "rss_mb": round(now.get("rss", 0.0), 1)}

    def log_owners(self, when: str, frame: int, libraries: bool = False) -> None:
        """Log ``memory_owners`` (``when``: ``start``, ``sample`` or ``end``)."""
        if not self.available:
            return
        extra = {"libraries_mb": libraries_mb()} if libraries else {}
        settle = when == "sample" and (self.encoder is None or frame <= SETTLE_FRAMES)
        self.log.info("memory_owners", when=when, frame=frame, **self.owners(settle),
                      **extra)
