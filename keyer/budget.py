"""Memory budget: predict a job's peak RSS before it starts, and watch it while it runs.

The prediction is a linear model in megapixels per output format, calibrated by measurement on
this project's reference machine (``benchmarks/memory-baseline.json`` records the runs):

    peak_mb = BASE_MB + mp * (per_mp[format] + EFFECTS_PER_MP * (effects > 0))

where ``mp`` is the output frame's megapixels. The encoder dominates (libvpx keeps several
reference and scratch frames per thread).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from keyer.errors import AbortedOverBudget
from keyer.memory import MB, rss_vms_mb

BASE_MB = 230.0          # interpreter, numpy, numba, OpenCV, PyAV + compiled kernels
PER_MP = {".webm": 150.0, ".mov": 90.0, ".mp4": 110.0, "png": 60.0}
EFFECTS_PER_MP = 60.0    # effect buffers, textures and scratch per output megapixel
WARN, CRITICAL = 0.75, 0.90


def estimate_peak_mb(width: int, height: int, fmt: str, effects: int) -> float:
    mp = width * height / 1e6
    return BASE_MB + mp * (PER_MP.get(fmt, 150.0) + (EFFECTS_PER_MP if effects else 0.0))


def largest_fitting(width: int, height: int, fmt: str, effects: int, budget_mb: float) -> tuple[int, int] | None:
    """The largest size with the same aspect ratio (even dimensions) whose estimate fits."""
    per = PER_MP.get(fmt, 150.0) + (EFFECTS_PER_MP if effects else 0.0)
    room = budget_mb - BASE_MB
    if room <= 0:
        return None
    mp = room / per
    return scale_to_megapixels(width, height, mp)


def scale_to_megapixels(width: int, height: int, mp: float) -> tuple[int, int] | None:
    """Largest even (w, h) with the aspect of (width, height) and w*h <= mp * 1e6."""
    if width * height <= mp * 1e6:
        return width - width % 2 or width, height - height % 2 or height
    s = math.sqrt(mp * 1e6 / (width * height))
    w = int(width * s) // 2 * 2
    h = int(height * s) // 2 * 2
    if w < 2 or h < 2:
        return None
    return w, h


@dataclass
class BudgetWatch:
    """Checks RSS against the budget each frame; logs the 75% and 90% crossings once."""

    budget_bytes: int | None
    log: Any
    abort: bool = False
    warned: bool = False
    critical: bool = False

    def check(self, stage: str, frame: int) -> None:
        if not self.budget_bytes:
            return
        rss_mb, _ = rss_vms_mb()
        budget_mb = self.budget_bytes / MB
        share = rss_mb / budget_mb
        if share >= WARN and not self.warned:
            self.warned = True
            self.log.warning("memory_warning", stage=stage, frame=frame,
                             budget_mb=round(budget_mb, 1), share=round(share, 3))
        if share >= CRITICAL and not self.critical:
            self.critical = True
            self.log.error("memory_critical", stage=stage, frame=frame,
                           budget_mb=round(budget_mb, 1), share=round(share, 3))
            if self.abort:
                raise AbortedOverBudget(
                    f"RSS {rss_mb:.0f} MB reached 90% of the {budget_mb:.0f} MB budget during "
                    f"{stage} at frame {frame}; stopped (--abort-over-budget)")
