"""Memory budget: predict a job's peak RSS before it starts, and watch it while it runs.

The prediction is a linear model in megapixels per output format, fitted to peak RSS measured
on this project's reference machine (2 cores, x86_64; 360p and 720p runs of the sample clip, with
and without effects; the memory regression run in ``benchmarks/memory-baseline.json`` checks it):

    peak_mb = BASE_MB[format] + mp * PER_MP[format] + (effects ? FX_BASE_MB + mp * FX_PER_MP : 0)

where ``mp`` is the output frame's megapixels. The base is the interpreter, numpy, OpenCV, PyAV
and the compiled kernels; per megapixel the encoder dominates (libvpx keeps reference and scratch
frames per thread), then keyer's own buffers (ring of RGBA frames, float32 matte planes).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from keyer.errors import AbortedOverBudget
from keyer.memory import MB, rss_vms_mb

# fitted to the peak RSS of warm jobs at 720p and 1080p, each format with and without
# --effects all (16 runs, 2026-12-03, after the two-buffer rings and the one malloc arena;
# every one within 3.5 % of this model): MB = base + megapixels * per
BASE_MB = {".webm": 216.0, ".mov": 183.0, ".mp4": 194.0, "png": 177.0}
PER_MP = {".webm": 180.0, ".mov": 62.0, ".mp4": 106.0, "png": 47.0}
FX_BASE_MB, FX_PER_MP = 7.0, 18.0   # 25 before the effects wrote the encoder's frames and banded (-7 MB/MP)
WARN, CRITICAL = 0.75, 0.90


def _coefficients(fmt: str, effects: int) -> tuple[float, float]:
    base = BASE_MB.get(fmt, max(BASE_MB.values())) + (FX_BASE_MB if effects else 0.0)
    per = PER_MP.get(fmt, max(PER_MP.values())) + (FX_PER_MP if effects else 0.0)
    return base, per


def estimate_peak_mb(width: int, height: int, fmt: str, effects: int) -> float:
    base, per = _coefficients(fmt, effects)
    return base + width * height / 1e6 * per


def largest_fitting(width: int, height: int, fmt: str, effects: int, budget_mb: float) -> tuple[int, int] | None:
    """The largest size with the same aspect ratio (even dimensions) whose estimate fits."""
    base, per = _coefficients(fmt, effects)
    room = budget_mb - base
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
