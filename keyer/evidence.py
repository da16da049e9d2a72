"""What luma says about the matte's faint end: faint coverage it confirms is kept, shadows it
shows are dropped (both on the key's linear model ``q = slope * guide + offset``, at chroma
resolution, after the guided filter and before the core matte).

A colour difference sees two things luma tells apart from real coverage:

* **faint coverage** (smoke, strand tips, the tails of motion blur): the ramp's start
  (``--similarity``) cuts it, because the screen's noise and the plate's small errors look
  like faint coverage too. Where a sample's luma differs from the clean plate's by more than
  the screen's own noise, in a way no shadow gives, it keys its coverage as it is
  (``guided.luma_evidence``; ``--no-faint``).
* **shadows** cast on the screen: a shade of the screen is the screen mixed with black, so its
  colour difference reads as coverage (a 35 % shadow keyed as 35 % black). Where a sample's
  luma has fallen by exactly its coverage times the plate's, within the screen's noise, it is
  that mix; where the samples around it are too (a wide shade, not a dark strand or a black
  subject's edge), it keys as screen (``guided.luma_evidence``, ``drop_shadows``;
  ``--keep-shadows``). Black smoke is the same mix and goes with it.

Both read the screen's noise, measured on the samples the plate counts as screen every
``every`` frames (``guided.screen_noise``): the median and robust spread of their coverage and
of their luma over the plate's. Until a frame shows enough screen neither changes anything.
Everything is allocated once per job.
"""
from __future__ import annotations

import numpy as np

from keyer.colour import LUMA709
from keyer.kernels import guided as guided_k
from keyer.settings import KeySettings

# Faint coverage is kept where the sample's luma differs from the plate's by FAINT_LUMA (0..1)
# or FAINT_SIGMAS times the screen's luma noise, whichever is more (fully at three times that),
# and its coverage is over FAINT_COVERAGE or the screen's noise (fully at FAINT_COVERAGE_FULL or
# 2.5 times it)
FAINT_LUMA = 0.01
FAINT_COVERAGE = 0.02
FAINT_COVERAGE_FULL = 0.05
FAINT_SIGMAS = 3.0
NOISE_SAMPLES = 4096  # about this many of the model's samples (evenly strided) measure the noise
NOISE_MIN_SAMPLES = 32
# Shadows: a shade deeper than SHADOW_DEEP fades back to coverage by SHADOW_DEEPEST (a black
# subject is a mix with black too); the box around a sample, SHADOW_BOX px square, must hold
# SHADOW_WIDE of its coverage as shade (fully at SHADOW_WIDE_FULL): a shadow is wide, a strand
# or an edge is not
SHADOW_DEEP = 0.6
SHADOW_DEEPEST = 0.8
SHADOW_BOX = 18
SHADOW_WIDE = 0.35
SHADOW_WIDE_FULL = 0.65


class LumaEvidence:
    """The faint-coverage and shadow rules of one key, bound to its plate and model.

    ``ramp`` = (hi, inv_width, clip_black, inv_clip), as the key's kernels take it; ``cells``
    the plate's grid shape; ``cell`` its px per cell; ``screen`` how near 0 a sample's coverage
    must be to count as screen; ``every`` the frames between noise measurements.
    """

    def __init__(self, settings: KeySettings, ramp: tuple, cells: tuple[int, int], cell: int,
                 screen: float, every: int) -> None:
        hi, inv_width, clip_black, inv_clip = ramp
        # the ramp keys alpha = a0 - a1 * q; the model moved by q' = k * q + k0 keys coverage
        # as it is (alpha = 1 - q). Kept only below the coverage where the two cross (0.5 with
        # the defaults: the ramp's midpoint), fading out from 0.6 of it; not at all when the
        # ramp has no start to lower (similarity 0)
        a1 = inv_width * inv_clip
        a0 = (hi * inv_width - clip_black) * inv_clip
        self.faint_on = bool(settings.faint and a0 < a1)
        self.start = 1.0 - hi   # the ramp's start, as coverage: a shade under it keys 0 anyway
        self.shadows_on = not settings.keep_shadows
        self.on = self.faint_on or self.shadows_on
        self.linear = (np.float32(1.0 / a1), np.float32((a0 - 1.0) / a1))
        cross = 1.0 if a1 <= 1.0 else min(1.0, (a1 - a0) / (a1 - 1.0))   # > 0 when on
        self.end = (np.float32(cross), np.float32(1.0 / (0.4 * max(cross, 1e-6))))
        self.plate = np.zeros(cells, np.float32)   # the plate's luma per cell
        self.weights = tuple(np.float32(k / 255.0) for k in LUMA709)
        self.cell, self.screen, self.every = np.float32(cell), np.float32(screen), every
        self.stats = np.zeros(4, np.float32)
        self.frames = 0
        # ``luma_evidence``'s gates: the screen's noise (measured: ``_gates``), the faint rule's
        # (c_end 0: off) and the shade's
        self.noise: tuple | None = None
        self.faint = self.end + self.linear if self.faint_on else (np.float32(0.0),) * 4
        self.shade: tuple | None = None
        self.where: tuple | None = None   # (plate, cols, px, cell): ``bind``
        self.buf: np.ndarray | None = None

    def bind(self, cols, px: int, shape: tuple[int, int]) -> None:
        """The model: ``shape`` samples of ``px`` px, ``cols`` = (col0, colf) of its columns on
        the plate (``keyer.keying.plate_columns``). Its buffers, made once."""
        self.where = (self.plate, cols, px, self.cell)
        h, w = shape
        step = int(min(8, max(1, (h * w / NOISE_SAMPLES) ** 0.5)))
        self.step = step
        self.buf = np.zeros((3, -(-h // step) * -(-w // step)), np.float32)
        # the shade's evidence per sample, and a flag per row (a 1 x 1 stand-in when off)
        self.evidence = np.zeros(shape if self.shadows_on else (1, 1), np.float32)
        self.rows = np.zeros(h if self.shadows_on else 1, np.uint8)
        if self.shadows_on:
            self.wide = (max(1, int(round(SHADOW_BOX / px)) // 2), np.float32(SHADOW_WIDE),
                         np.float32(1.0 / (SHADOW_WIDE_FULL - SHADOW_WIDE)))

    def plate_from(self, grid: np.ndarray) -> None:
        """The plate's luma, from the clean plate's colour (after each of its updates)."""
        if self.on:
            guided_k.plate_luma(grid, self.weights, self.plate)

    def __call__(self, slope: np.ndarray, offset: np.ndarray, guide: np.ndarray) -> None:
        """Both rules, in place on the model, in one pass (``guided.luma_evidence``): faint
        coverage kept and the shade's evidence gathered (luma tells a sample one or the other),
        then wide shades dropped (``guided.drop_shadows``)."""
        if not self.on:
            return
        if self.frames % self.every == 0:
            n = guided_k.screen_noise(slope, offset, guide, *self.where, self.screen,
                                      self.step, self.buf, self.stats)
            if n >= NOISE_MIN_SAMPLES:
                self._gates(*(float(v) for v in self.stats))
        self.frames += 1
        if self.noise is None:
            return
        guided_k.luma_evidence(slope, offset, guide, self.where, self.noise, self.faint,
                               self.shade, self.evidence, self.rows)
        if self.shadows_on:
            guided_k.drop_shadows(slope, offset, guide, self.evidence, self.wide, self.rows)

    def _gates(self, c_centre: float, c_spread: float, y_centre: float, y_spread: float) -> None:
        """Both rules' thresholds from the screen's noise: the median and robust spread of its
        samples' coverage and of their luma over the plate's."""
        m0 = max(FAINT_COVERAGE, c_centre + FAINT_SIGMAS * c_spread)
        m1 = max(FAINT_COVERAGE_FULL, m0 * FAINT_COVERAGE_FULL / FAINT_COVERAGE)
        l0 = max(FAINT_LUMA, FAINT_SIGMAS * y_spread)
        f = np.float32
        self.noise = (f(m0), f(1.0 / (m1 - m0)), f(y_centre), f(l0), f(1.0 / (2.0 * l0)))
        s0 = max(m0, self.start)   # a shade needs dropping only where the ramp keys it
        self.shade = (f(s0), f(1.0 / (m1 - m0)), f(SHADOW_DEEPEST),
                      f(1.0 / (SHADOW_DEEPEST - SHADOW_DEEP)))

    def warm(self) -> None:
        """Compile or load the kernels on a tiny model (run by ``keyer.keying.warm``)."""
        model = np.zeros((2, 2), np.float32)
        self.bind((np.zeros(2, np.int64), np.zeros(2, np.float32)), 2, (2, 2))
        guided_k.screen_noise(model, model, model, *self.where, np.float32(0.15), 1,
                              np.zeros((3, 1), np.float32), self.stats)
        self._gates(0.0, 0.0, 0.0, 0.0)
        guided_k.luma_evidence(model, model.copy(), model, self.where, self.noise, self.faint,
                               self.shade, self.evidence, self.rows)
        if self.shadows_on:
            guided_k.drop_shadows(model, model, model, self.evidence, self.wide, self.rows)

