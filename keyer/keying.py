"""Chroma key: colour-difference matte against a clean plate of the screen, with despill.

The matte is a colour difference taken against the screen colour *at that place* S: a clean
plate, a grid of 16-px cells learned over time only from pixels that are confidently screen, so
an unevenly lit screen keys evenly and a veil or a screen-tinted detail is never taken for
screen. For a green screen, with each channel's excess over the plate ``e = C - S``: ``d = e_G -
(balance*max(e_R, e_B) + (1-balance)*min(e_R, e_B))`` and the ratio ``q = 1 + d / d_S``, where
``d_S = S_G - (balance*min(S_R, S_B) + (1-balance)*max(S_R, S_B))``. It is 1 on the screen, 0 on
any neutral foreground, and falls linearly with coverage along any mix of a foreground with
the screen (the excesses scale with coverage, so the larger one stays the larger): soft edges
and veils come out as soft as they are. Near the screen a sample is unmixed with the
foreground beside it whose colour it lies on the way to (a red suit on blue looks more than
opaque: its edges would be too opaque), found by a second difference, the tint;
ratios up to ``tolerance`` (light spill on a solid subject) key opaque; above it the ramp
(``similarity``/``softness``) runs through 50 % at a ratio of 0.5. A luma-guided filter over
the ratio steadies noisy screens; then luma's evidence (``keyer.evidence``): faint coverage
whose luma is not the screen's there keys as it is (the ramp's start is for the screen's
noise, which luma does not show), and a wide shade of the screen (a shadow cast on it) keys as
screen. The core matte fills small transparent islands enclosed by opaque subject; clip
black/white, shrink (erode) and feather (blur) shape the matte; despill limits the primary
channel and restores the luminance it removes. How the plate, the
foreground scale and the core matte decide, and what they were measured to do:
docs/quality.md.
"""
from __future__ import annotations


import cv2
import numpy as np

from keyer import kernels
from keyer.colour import BT709, BT709_LIMITED, LUMA709, parse_hex
from keyer.errors import UsageProblem
from keyer.evidence import LumaEvidence
from keyer.frame import EMPTY, Box
from keyer.settings import KeySettings
from keyer.kernels import core as core_k
from keyer.kernels import guided as guided_k
from keyer.kernels import planar as planar_k
from keyer.kernels import rgba as rgba_k
from keyer.kernels import screen as screen_k

# Nominal screen colours (sRGB) used until the real one is measured from the frame.
NOMINAL = {"green": (0, 177, 64), "blue": (0, 71, 187)}
LIMITS = {"max": 0, "average": 1, "min": 2}
CELL = 16  # px per cell of the local screen estimate
MIN_COUNT = CELL * CELL // 4  # confidently-screen pixels a cell needs to teach the plate
GUIDE_EPS = 1e-4  # guided filter regularisation (luma in 0..1): lower follows luma edges closer
GUIDE_CHUNKS = 32  # row chunks the guided filter's kernels share among threads
COMPOSE_CHUNKS = 64  # strip chunks of the planar compose
# A pixel teaches the clean plate only when its ratio to the plate is over SCREEN_MIN:
# confidently screen (noise at chroma resolution is ~0.04 of the ratio); a veil at 50 % (ratio
# ~0.5) or a screen-tinted detail well under the screen's saturation never does. A ratio over 1
# is the screen under more light than the plate holds (a light turned up, a shadow gone), so
# there is no upper limit: the plate follows it. One-sided, the window biases a noisy screen's
# mean by under 0.1 % at a sigma of 0.05 of the ratio.
SCREEN_MIN = 0.85
# ... and when its purity (its own colour difference over its primary channel, which light
# and shade leave alone) is within PURITY_MIN..2 - PURITY_MIN of the screen's: a light veil or
# smoke over a brighter part of the screen can match the plate's colour difference (a neutral
# veil adds the same to every channel), never its purity, so the plate cannot learn it and
# creep into it. Symmetric too, so that on a noisy screen the plate's mean is not biased.
PURITY_MIN = 0.85
# The light on the screen turned down or up (a lamp, a cloud, the camera's exposure, a fade):
# the plate learns only from ratios over SCREEN_MIN, so it would not follow a fall of over 15 %,
# and would follow a smaller one, or a rise, a frame late at half the rate. The plate is the
# mean of its confidently-screen pixels, so the light on them against it (their gain, per cell
# from their colour sums: ``screen.light_gains``) is 1 while the light holds, however much of
# the screen a subject or its dark edges cover. When their mean gain is off 1 by more than
# LIGHT_FALLING allows and so is each cell's but in LIGHT_LIT of the cells that show the screen
# (a shallow shade over a part of it moves the mean alone), the light changed on the whole
# screen, and the plate takes the median cell's gain (``_KeyBase._follow_light``); again from
# the better plate, up to LIGHT_PASSES times, as pixels under SCREEN_MIN are left out of a
# fall's gain. It needs LIGHT_SOME of the picture to go by. When the light fell so far that
# these pixels are gone at once (from LIGHT_AREA of the picture or more the frame before), the
# gain is read from the median of the ratios between DIM_MIN and SCREEN_MIN (a darker subject
# of the screen's colour coming in takes a few cells a frame, not nine tenths of the screen at
# once). A gain too dark is undone by the plate's learning (no upper limit): a wrong guess
# costs a frame.
LIGHT_FALLING = 0.95
LIGHT_LIT = 0.25
LIGHT_PASSES = 3   # measure passes at most on a frame where the light changed
LIGHT_SOME = 0.01
LIGHT_AREA = 0.1
DIM_MIN = 0.3
SOLID_BLEND = 0.15  # ratio span over which the solid tolerance blends back into the ramp
SOLID_FLOOR = 0.15  # how far under the ramp's opaque end the ratio may go (see guided._solid)
FIRST_PASSES = 3  # measure passes on the first frame, each from the better plate
TREND_EVERY = 12  # frames between refits of the plate's trend (while some cells are unseen)
# How near (radians, in the plane of 1 - ratio and tint) a sample's direction must be to a
# candidate foreground's for it to count as a mix of that foreground with the screen; mixes
# nearer than this prefer the most opaque candidate (guided.foreground_scale)
UNMIX_ANGLE = 0.1


def parse_key_color(text: str) -> tuple[str, tuple[int, int, int] | None]:
    """``auto``/``green``/``blue`` -> (name, None); ``#RRGGBB`` -> ("rgb", (r, g, b))."""
    t = str(text).strip().lower()
    if t in ("auto", "green", "blue"):
        return t, None
    rgb = parse_hex(t, strict=True)
    if rgb is None:
        raise UsageProblem(f"--key {text!r}: use auto, green, blue or #RRGGBB")
    if max(rgb) - min(rgb) < 30:
        raise UsageProblem(f"--key {text!r} is too grey to key on; pick a saturated colour")
    return "rgb", rgb


def estimate_screen(rgb: np.ndarray, wanted: str = "auto") -> tuple[int, tuple[float, float, float]]:
    """Estimate (primary channel, screen RGB) from the border of one frame.

    Takes the outer 6% of the frame, keeps pixels whose green (or blue) clearly dominates, and
    returns the median of those. ``wanted`` = green/blue forces the primary channel.
    """
    h, w = rgb.shape[:2]
    bh, bw = _border(h), _border(w)
    border = np.concatenate([rgb[:bh].reshape(-1, 3), rgb[-bh:].reshape(-1, 3),
                             rgb[:, :bw].reshape(-1, 3), rgb[:, -bw:].reshape(-1, 3)])
    return _screen_of(border.astype(np.float32), wanted)


def estimate_screen_planar(y: np.ndarray, u: np.ndarray, v: np.ndarray, c,
                           wanted: str = "auto") -> tuple[int, tuple[float, float, float]]:
    """``estimate_screen`` from 8-bit 4:2:0 planes of an even-sized picture, read with constants
    ``c`` (a ``keyer.colour.YCbCr``): the border's pixels only, at chroma resolution (each 2x2
    block's mean luma with its chroma): some 6 % as many samples as converting the picture."""
    hc, wc = u.shape
    bh, bw = _border(hc), _border(wc)
    f = np.float32
    pixels = []
    for r0, r1, c0, c1 in ((0, bh, 0, wc), (hc - bh, hc, 0, wc), (0, hc, 0, bw), (0, hc, wc - bw, wc)):
        cb = (u[r0:r1, c0:c1].astype(f) - c.c_off) * c.c_scale
        cr = (v[r0:r1, c0:c1].astype(f) - c.c_off) * c.c_scale
        block = y[2 * r0:2 * r1, 2 * c0:2 * c1]
        luma = (block[0::2, 0::2].astype(f) + block[0::2, 1::2] + block[1::2, 0::2]
                + block[1::2, 1::2])
        yy = (luma * f(0.25) - c.y_off) * c.y_scale
        rgb = np.stack([yy + c.rv * cr, yy - c.gu * cb - c.gv * cr, yy + c.bu * cb], axis=-1)
        pixels.append(np.clip(np.rint(rgb), 0, 255).reshape(-1, 3))
    return _screen_of(np.concatenate(pixels), wanted)


def plate_columns(n: int, px: int, cells: int) -> tuple[np.ndarray, np.ndarray]:
    """For ``n`` columns of ``px`` px each: the plate cell left of each column's centre and
    the weight of the one right of it (bilinear between cell centres, clamped to the ``cells``
    cells), as the kernels sample the clean plate."""
    x = (px * np.arange(n, dtype=np.float32) + 0.5 * px) / CELL - 0.5
    col0 = np.clip(np.floor(x), 0, cells - 1).astype(np.int64)
    return col0, np.clip(x - col0, 0.0, 1.0).astype(np.float32)


def _border(n: int) -> int:
    """Rows (or columns) in the outer 6% of ``n``: at least one."""
    return max(1, n * 6 // 100)


def _screen_of(px: np.ndarray, wanted: str) -> tuple[int, tuple[float, float, float]]:
    """(primary, screen RGB) of border pixels ``px`` (N, 3) float32: see ``estimate_screen``."""
    best = None
    for primary, name in ((1, "green"), (2, "blue")):
        if wanted not in ("auto", name):
            continue
        a, b = [px[:, c] for c in (0, 1, 2) if c != primary]
        dom = px[:, primary] - np.maximum(a, b)
        mask = dom > 20
        share = float(mask.mean())
        if best is None or share > best[0]:
            median = np.median(px[mask], axis=0) if mask.sum() >= 16 else None
            best = (share, primary, median)
    share, primary, median = best
    if median is None or share < 0.2:
        name = "green" if primary == 1 else "blue"
        return primary, tuple(float(c) for c in NOMINAL[name])
    return primary, (float(median[0]), float(median[1]), float(median[2]))


class _KeyBase:
    """Settings, matte constants and the local screen estimate shared by both keyers.

    The screen colour is measured on the first frame's border (``auto``/green/blue) and seeds
    the clean plate, a grid of ``CELL``-px cells over the picture that learns the screen at
    each place from confidently-screen pixels (``_update_grid``). Per job it holds, besides the
    grid: ``seen`` (a flag per cell), the plate's trend and its least-squares buffers, and the
    core matte's coarse mask (a byte per 4x4 px on the planar path): about 0.5 MB at 1080p,
    fixed by the frame size.
    """

    def __init__(self, settings: KeySettings, width: int, height: int) -> None:
        self.s = settings
        self.width, self.height = width, height
        gh, gw = -(-height // CELL), -(-width // CELL)
        self.grid = np.zeros((gh, gw, 4), np.float32)
        self.sums = np.zeros((gh, gw, 3), np.float32)
        self.counts = np.zeros((gh, gw), np.float32)
        self.screen_pixels = 0.0   # how many pixels taught the plate, the frame before
        self._cell_gains = np.zeros((gh, gw), np.float32)   # the light on them, per cell
        self._num = np.zeros((gh, gw, 3), np.float32)
        self._den = np.zeros((gh, gw), np.float32)
        self._fresh = np.zeros((gh, gw, 3), np.float32)
        self.seen = np.zeros((gh, gw), np.float32)   # 1 where the plate has seen the screen
        self._trend = np.zeros((gh, gw, 3), np.float32)
        # the trend's least squares: its design matrix (1, x, y, x^2, xy, y^2 at each cell, in
        # -1..1) and buffers, made once
        v, u = np.mgrid[0:gh, 0:gw].reshape(2, -1) / np.array([[max(1, gh - 1)], [max(1, gw - 1)]])
        u, v = 2 * u - 1, 2 * v - 1
        self._design = np.stack([np.ones_like(u), u, v, u * u, u * v, v * v],
                                axis=1).astype(np.float32)
        self._gram = np.zeros((6, 6))
        self._rhs = np.zeros((6, 3))
        self._diag = np.diag_indices(6)
        self._frames = 0
        self._guide_rows: np.ndarray | None = None   # the guided filter's row buffers
        self._eps = np.float32(GUIDE_EPS)
        self.primary: int | None = None
        self.screen: tuple[float, float, float] | None = None
        self.measured = False
        self.hi = 1.0 - settings.similarity
        self.inv_width = 1.0 / settings.softness
        self.inv_clip = 1.0 / (settings.clip_white - settings.clip_black)
        # the ratio -> alpha ramp, as the kernels take it: (hi, inv_width, clip_black, inv_clip)
        self.ramp = (self.hi, self.inv_width, settings.clip_black, self.inv_clip)
        # the solid tolerance, as ``guided._solid`` takes it: (q1, slope,
        # q_op, q_floor): ratios up to q1 go to q_op (alpha 1) and below, down to SOLID_FLOOR
        # under it, then rise back to themselves by q1 + SOLID_BLEND
        q_op = self.hi - settings.softness
        q1 = max(settings.tolerance, q_op)
        self.solid = (np.float32(q1), np.float32((q1 + SOLID_BLEND - q_op) / SOLID_BLEND),
                      np.float32(q_op), np.float32(q_op - SOLID_FLOOR))
        # the core matte: confidently opaque = alpha >= 0.9, as a ratio (the ramp inverted)
        self.q_opaque = np.float32(self.hi - (0.9 / self.inv_clip + settings.clip_black)
                                   / self.inv_width)
        # the foreground scale's limits: confidently screen, confidently opaque (for the core
        # matte's mask before the unmixing), and how near in direction a mix lies to its
        # foreground (the tangent of UNMIX_ANGLE)
        self.fg_limits = (np.float32(SCREEN_MIN), self.q_opaque,
                          np.float32(np.tan(UNMIX_ANGLE)))
        self.grow = np.ones((3, 3), np.uint8)
        self.coarse: np.ndarray | None = None   # made by ``_core_buffers``, at the model's size
        self.fill_cells = 0
        # luma's evidence: faint coverage kept, shadows dropped (``keyer.evidence``)
        self.evidence = LumaEvidence(settings, self.ramp, (gh, gw), CELL, 1.0 - SCREEN_MIN,
                                     TREND_EVERY)
        if settings.shrink:
            r = int(round(settings.shrink))
            self.erode_kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))

    def _start(self, estimate) -> None:
        """Set the screen colour: the one given, or ``estimate(wanted)`` from the first frame."""
        name, colour = parse_key_color(self.s.color)
        if colour is not None:
            self.primary = int(np.argmax(colour))
            self.screen = tuple(float(c) for c in colour)
            # the purity is the real screen's, measured on the border: a colour given as
            # #00FF00 is purer than any real screen
            wanted = {1: "green", 2: "blue"}.get(self.primary)
            measured = estimate(wanted)[1] if wanted else self.screen
        else:
            self.primary, self.screen = estimate(name)
            measured = self.screen
        self.grid[..., 0], self.grid[..., 1], self.grid[..., 2] = self.screen
        self.grid[..., 3] = screen_k.screen_difference(self.screen, self.primary, self.s.balance)
        self.evidence.plate_from(self.grid)
        # what the ratio kernels take as ``key``: the primary, balance, the ratio over which a
        # pixel may teach the plate (no upper limit: see SCREEN_MIN) and the purity it needs
        purity = screen_k.purity(measured, self.primary, self.s.balance)
        self.stats_key = (self.primary, np.float32(self.s.balance), np.float32(SCREEN_MIN),
                          np.float32(PURITY_MIN * purity),
                          np.float32((2.0 - PURITY_MIN) * purity))

    def _update_grid(self, rate: float = 0.5) -> None:
        """Teach the clean plate this frame's statistics (see ``screen_k.grid_blend``).

        Cells with enough confidently-screen pixels move to their mean; cells behind the
        subject keep what they learned; cells never seen take a smooth trend (a quadratic in x
        and y, least-squares fitted to the plate's seen cells every ``TREND_EVERY`` frames:
        lighting is smooth) plus this frame's measured neighbours' residuals from it, Gaussian-weighted (normalised convolution, sigma 2
        cells), so a wide region the screen has not yet shown (a veil hanging there from the
        first frame) gets the screen the lighting around it implies, not its own colour.
        """
        if not self.s.local:
            return
        min_count = np.float32(MIN_COUNT)
        if self.counts.max() < min_count:
            return
        unseen = not self.seen.all()
        if unseen and (rate == 1.0 or self._frames % TREND_EVERY == 0):
            self._fit_trend()
        self._frames += 1
        screen_k.grid_means(self.sums, self.counts, min_count, self._trend, self._fresh,
                            self._num, self._den)
        if unseen:   # the normalised convolution (OpenCV's blur) is for the unseen cells only
            for plane in (self._num, self._den):
                cv2.GaussianBlur(plane, (0, 0), 2.0, dst=plane, borderType=cv2.BORDER_REPLICATE)
        screen_k.grid_blend(self.counts, min_count, self._fresh, (self._num, self._den),
                            self._trend, np.float32(rate), self.primary,
                            np.float32(self.s.balance), self.seen, self.grid)
        self.evidence.plate_from(self.grid)

    def _fit_trend(self) -> None:
        """``_trend``: the plate's seen cells' colour as a quadratic in (x, y), least squares
        (their mean where fewer than 12 cells are seen; the plate itself where none is): the
        normal equations summed in a kernel, a 6x6 solve, the quadratic evaluated in a kernel."""
        n = screen_k.trend_normal(self.seen, self.grid, self._design, self._gram, self._rhs)
        if n < 12:
            seen = self.seen.reshape(-1)
            plate = self.grid.reshape(-1, 4)[:, :3]
            self._trend.reshape(-1, 3)[...] = plate if n == 0 else seen @ plate / np.float32(n)
            return
        self._gram[self._diag] += 1e-4 * n
        screen_k.trend_eval(self._design, np.linalg.solve(self._gram, self._rhs), self._trend)

    def _measure(self, stats, *planes) -> None:
        """Run ``stats(*planes)`` for this frame; on the first, converge on the screen first:
        measure, then re-measure with the better plate (a seed too dark or too pale for the
        screen still converges)."""
        if not self.measured:
            for _ in range(FIRST_PASSES):
                stats(*planes)
                self._update_grid(rate=1.0)
            self.measured = True
        stats(*planes)
        for _ in range(LIGHT_PASSES):   # each from the better plate
            if not self._follow_light():
                break
            stats(*planes)
        self.screen_pixels = float(self.counts.sum(dtype=np.float64))

    def _follow_light(self) -> bool:
        """Scale the plate by the light's gain when this frame's statistics show the light
        changed on the whole screen (LIGHT_FALLING; LIGHT_AREA); True if it did. Light scales
        every channel alike, and the colour difference with them: the plate's colour, its
        difference and its trend are multiplied by the gain, and the frame is measured again
        against it. From the statistics the plate learns from, and only where the light fell
        at once from the ratio itself: nothing is added to the ratio pass."""
        if not self.s.local:
            return False
        n = float(self.counts.sum(dtype=np.float64))
        area = self.width * self.height
        if n >= LIGHT_SOME * area:
            mean = screen_k.light_gains(self.sums, self.counts, self.grid, self.primary,
                                        np.float32(self.s.balance), self._cell_gains) / n
            if LIGHT_FALLING <= mean <= 1.0 / LIGHT_FALLING:
                return False
            # all over the screen: a shade over a part of it moves the mean alone
            cells = self._cell_gains[self.counts >= MIN_COUNT]
            kept = (cells >= LIGHT_FALLING) if mean < 1.0 else (cells <= 1.0 / LIGHT_FALLING)
            if np.count_nonzero(kept) >= LIGHT_LIT * cells.size:
                return False
            gain = float(np.median(cells))
        elif self.screen_pixels >= LIGHT_AREA * area:
            q = self.ratio[::2, ::2]
            dim = q[(q > DIM_MIN) & (q <= SCREEN_MIN)]
            if dim.size < LIGHT_AREA * q.size:
                return False
            # the ratio falls by the gain's fall times the screen's own difference over d_S
            own = screen_k.light_scale(self.screen, self.primary, self.s.balance)
            gain = max(0.05, 1.0 - (1.0 - float(np.median(dim))) / own)
        else:
            return False
        gain = np.float32(gain)
        self.grid *= gain
        self._trend *= gain
        self.evidence.plate_from(self.grid)
        return True

    def _core_buffers(self, height: int, width: int) -> None:
        """The core matte's coarse mask for a model of ``height`` x ``width`` samples (2x2
        samples a cell), and its island limit in cells."""
        self.coarse = np.zeros(((height + 1) // 2, (width + 1) // 2), np.uint8)
        self.core_spans = np.zeros((self.coarse.shape[0], 2), np.int64)
        self.core_cols = np.zeros((self.coarse.shape[1], 2), np.int64)
        self.core_box = np.zeros(4, np.int64)
        self.fill_cells = int(self.s.fill_holes / 100.0 * self.coarse.size)

    def _core(self, slope: np.ndarray, offset: np.ndarray, guide: np.ndarray) -> None:
        """The core matte, on the model ``q = slope * guide + offset``: transparent islands
        enclosed by confidently opaque subject, no larger than ``fill_holes`` % of the picture,
        become solid (``core_k.FILLED``).

        Rule: cells of 2x2 model samples (4x4 px on the planar path) are opaque when all
        their samples are (alpha >= 0.9), in the model or in the ratio before the foreground
        scale's unmixing (which can thin a ring around a screen-coloured detail); the other
        cells' 8-connected components are labelled (OpenCV) around the candidates
        (``core_k.candidate_box``: none on most frames, and then nothing is labelled); a
        component reaching the screen outside (or the picture's edge) is left alone, as is one
        larger than the limit. So an island is filled only if a ring of opaque subject at
        least one cell wide closes it off everywhere and it is small: a patch, a reflection, a
        hole keyed through the screen-coloured part of a costume; a real gap stays open.
        """
        if self.fill_cells <= 0:
            return
        core_k.coarse_mask(slope, offset, guide, self.q_opaque, self.coarse, self.core_spans)
        core_k.candidate_box(self.coarse, self.core_spans, self.core_cols, self.core_box)
        r0, r1, c0, c1 = (int(v) for v in self.core_box)
        if r1 == r0:
            return
        ch, cw = self.coarse.shape   # label the candidates' box grown by a cell: a component
        r0, r1, c0, c1 = max(r0 - 1, 0), min(r1 + 1, ch), max(c0 - 1, 0), min(c1 + 1, cw)
        sub = self.coarse[r0:r1, c0:c1]
        # on that box's edge holds a cell that is no candidate, so it reaches the screen. The
        # labels alone (the statistics' pass costs OpenCV 20x more than the labelling); areas
        # by bincount
        n, labels = cv2.connectedComponents(sub, connectivity=8, ltype=cv2.CV_32S)
        if n <= 1:
            return
        area = np.bincount(labels.ravel(), minlength=n)
        island = area <= self.fill_cells
        island[0] = False
        for edge in (labels[0], labels[-1], labels[:, 0], labels[:, -1]):
            island[edge] = False
        if not island.any():
            return
        lut = island.astype(np.uint8)
        # grown by a cell into the ring: a sample there that the chroma calls opaque can hold
        # pixels of the island that luma (the guided model) would key out
        core_k.fill_core(cv2.dilate(lut[labels], self.grow), r0, c0, slope, offset)

    def _foreground(self, q: np.ndarray, tint: np.ndarray) -> None:
        """The local foreground scale and the solid tolerance, in place on the ratio ``q``
        with its ``tint`` (``guided_k.foreground_scale``; ``fg_cells`` and the core matte's
        ``coarse`` mask, which it seeds, are made for ``q``'s size)."""
        guided_k.foreground_scale(q, tint, self.solid, self.fg_limits, self.fg_cells,
                                  self.coarse, self.fg_picks)

    def _shape_matte(self, alpha: np.ndarray) -> None:
        """Shrink (erode) and feather (blur) a uint8 matte in place."""
        if self.s.shrink:
            cv2.erode(alpha, self.erode_kernel, dst=alpha)
        if self.s.feather:
            cv2.GaussianBlur(alpha, (0, 0), self.s.feather, dst=alpha)

    def _guided_model(self, g: np.ndarray, p: np.ndarray, work: list) -> tuple[np.ndarray, np.ndarray]:
        """The guided filter of ``p`` by the guide ``g`` (He & Sun 2015) as its per-pixel linear
        model (a, b), so that ``a * guide + b`` is the filtered ``p``.

        A local linear model in luma gives the matte (from half-resolution chroma) luma's sharp
        edges and averages noise away where the picture is flat. One Numba pass (box sums with
        reflected borders, as OpenCV's boxFilter) fits each sample's model over its own
        (2r+1)^2 box; the filter's usual second step, box means of the coefficients, is left
        out: at r = 1 it doubled the support (5x5 chroma samples, 10 px), blurring edges luma
        cannot sharpen (red on blue) and thin strands, for no gain in noise (docs/quality.md).
        ``work`` = the two planes of ``g``'s shape the model is written to.
        """
        r = max(1, self.s.denoise // 2)
        a, b = work
        h, w = g.shape
        if self._guide_rows is None:   # row buffers, once: none are allocated per frame
            self._guide_rows = np.zeros((min(h, GUIDE_CHUNKS), 9, w + 2 * r), np.float32)
        guided_k.guided_fit(g, p, r, self._eps, self._guide_rows, a, b)
        return a, b


class Keyer(_KeyBase):
    """A chroma key of RGBA frames bound to one frame size: buffers allocated once, reused.

    ``keyer(rgba)`` keys in place: ``rgba`` holds the frame's RGB (A ignored) and gets alpha and
    despilled colour.
    """

    def __init__(self, settings: KeySettings, width: int, height: int) -> None:
        super().__init__(settings, width, height)
        # ratio and luma guide at full size; the guided filter works at half size (its input
        # comes from half-resolution chroma anyway) and its coefficients are upsampled
        self.ratio = np.zeros((height, width), np.float32)
        self.luma = np.zeros((height, width), np.float32)
        self.coef = [np.zeros((height, width), np.float32) for _ in range(2)]
        self.small = (max(1, (width + 1) // 2), max(1, (height + 1) // 2))
        sw, sh = self.small
        # g, p, then the guided filter's model a, b
        self.work = [np.zeros((sh, sw), np.float32) for _ in range(4)]
        g, p, a, b = self.work
        self.fit_work = [a, b]
        scaled = g.shape if settings.denoise else (height, width)   # the ratio scaled
        self.fg_cells = np.zeros((6, (scaled[0] + 1) // 2, (scaled[1] + 1) // 2), np.float32)
        self.fg_picks = np.zeros((self.fg_cells.shape[1], 3, 9), np.float32)
        self.alpha = np.zeros((height, width), np.uint8) if (settings.shrink or settings.feather) else None
        self._core_buffers(*(g.shape if settings.denoise else (height, width)))
        gw = self.grid.shape[1]
        self.cols = plate_columns(width, 1, gw)
        if settings.denoise:   # the model at half size, or the ratio itself
            self.evidence.bind(plate_columns(sw, 2, gw), 2, (sh, sw))
        else:
            self.evidence.bind(self.cols, 1, (height, width))
        self.grid_rows = np.zeros((self.grid.shape[0], 4, gw + 1), np.float32)   # the stats' rows

    def _stats(self, rgba: np.ndarray) -> None:
        # the tint goes to coef[1] (free until the model is upsampled into it)
        rgba_k.ratio_and_screen_stats(rgba, self.grid, CELL, self.cols, LUMA709,
                                      self.stats_key, self.ratio, self.coef[1], self.luma,
                                      (self.sums, self.counts), self.grid_rows)

    def _guided(self) -> tuple[np.ndarray, np.ndarray]:
        """The guided filter's model fitted at half size, upsampled to full size (bilinear)."""
        g, p, tint = self.work[:3]   # the tint in the model's plane a until the fit
        cv2.resize(self.luma, self.small, dst=g, interpolation=cv2.INTER_AREA)
        cv2.resize(self.ratio, self.small, dst=p, interpolation=cv2.INTER_AREA)
        cv2.resize(self.coef[1], self.small, dst=tint, interpolation=cv2.INTER_AREA)
        self._foreground(p, tint)
        slope, offset = self._guided_model(g, p, self.fit_work)
        self.evidence(slope, offset, g)
        self._core(slope, offset, g)
        size = (self.width, self.height)
        cv2.resize(slope, size, dst=self.coef[0], interpolation=cv2.INTER_LINEAR)
        cv2.resize(offset, size, dst=self.coef[1], interpolation=cv2.INTER_LINEAR)
        return self.coef[0], self.coef[1]

    def __call__(self, rgba: np.ndarray) -> None:
        if self.primary is None:
            self._start(lambda wanted: estimate_screen(rgba[..., :3], wanted))
        self._measure(self._stats, rgba)
        if self.s.denoise:
            slope, offset = self._guided()
        else:
            slope, offset = self.coef[0], self.ratio
            slope.fill(0.0)
            self._foreground(self.ratio, self.coef[1])
            self.evidence(slope, offset, self.luma)
            self._core(slope, offset, self.luma)
        rgba_k.matte_and_despill(rgba, (slope, offset, self.luma), self.grid, CELL, self.ramp,
                                 (self.primary, LIMITS[self.s.spill_limit], self.s.spill,
                                  LUMA709[self.primary]))
        self._update_grid()
        if self.alpha is not None:
            np.copyto(self.alpha, rgba[..., 3])
            self._shape_matte(self.alpha)
            rgba[..., 3] = self.alpha


class PlanarKeyer(_KeyBase):
    """A chroma key from 8-bit 4:2:0 planes straight to the encoder's planes (BT.709 limited).

    The matte's ratio, the screen statistics and the guided filter work at chroma resolution
    (a quarter of the pixels); alpha and luma are written per pixel, colour per 2x2 block. No
    RGB frame exists: this is the RGBA path's key without its two conversions (see the kernels
    in ``keyer.kernels.planar``). ``background`` = (Y', Cb, Cr) planes to composite over (4:2:0,
    BT.709 limited), or None to write alpha.
    """

    def __init__(self, settings: KeySettings, width: int, height: int,
                 background: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None) -> None:
        super().__init__(settings, width, height)
        self.no_rgba = np.zeros((1, 1), np.uint32)
        self.no_plane = np.zeros((1, 1), np.uint8)
        hc, wc = (height + 1) // 2, (width + 1) // 2
        self.ratio = np.zeros((hc, wc), np.float32)
        self.guide = np.zeros((hc, wc), np.float32)
        # the guided filter's model a, b
        self.work = [np.zeros((hc, wc), np.float32) for _ in range(2)]
        self.zero_a = np.zeros((hc, wc), np.float32)
        self.fg_cells = np.zeros((6, (hc + 1) // 2, (wc + 1) // 2), np.float32)
        self.fg_picks = np.zeros((self.fg_cells.shape[1], 3, 9), np.float32)
        self.alpha = np.zeros((height, width), np.uint8)
        self._core_buffers(hc, wc)
        self.shaped = bool(settings.shrink or settings.feather)
        self.pre = np.zeros((height, width), np.uint8) if self.shaped else None
        self.ccols = plate_columns(wc, 2, self.grid.shape[1])
        self.evidence.bind(self.ccols, 2, (hc, wc))
        # the screen grid interpolated to chroma columns: made by the stats pass, used by compose
        self.gcols = np.zeros((self.grid.shape[0], 4, wc), np.float32)
        # the kernels' row buffers (per grid row / per chunk of strips), made once
        self.stats_rows = np.zeros((self.grid.shape[0], 4, wc), np.float32)
        self.compose_rows = np.zeros((max(1, min(hc, COMPOSE_CHUNKS)), 6, wc), np.float32)
        self.alpha_rows = kernels.chroma_rows(height, wc)
        self.spans = np.zeros((hc, 2), np.int32)   # each strip's visible blocks, per picture
        self.whole = (0, height, 0, width)
        self.flatten = background is not None
        self.background = background or (np.zeros((1, 1), np.uint8),) * 3

    def _stats(self, y, u, v, c) -> None:
        planar_k.planar_ratio_and_stats((y, u, v), self.grid, CELL, self.ccols,
                                        c.coefficients + LUMA709,
                                        self.stats_key, self.ratio, self.work[0], self.guide,
                                        (self.sums, self.counts), self.gcols, self.stats_rows)

    def __call__(self, y: np.ndarray, u: np.ndarray, v: np.ndarray, c, y_out: np.ndarray,
                 u_out: np.ndarray, v_out: np.ndarray, a_out: np.ndarray | None = None) -> None:
        """Key one picture: ``y``/``u``/``v`` decoded planes read with constants ``c`` (a
        ``keyer.colour.YCbCr``); the output planes get the keyed picture, the matte written
        straight into ``a_out`` (None when compositing over a background)."""
        self._key(y, u, v, c, (y_out, u_out, v_out), self.no_rgba,
                  self.alpha if a_out is None else a_out, self.whole)

    def to_rgba(self, y: np.ndarray, u: np.ndarray, v: np.ndarray, c, rgba: np.ndarray,
                stale: Box | None = None) -> Box:
        """Key one picture into straight-alpha RGBA (H, W, 4) uint8, for the effects (each
        pixel's 4 bytes must be contiguous; the kernel writes them as one little-endian
        uint32). ``stale``: a box outside which ``rgba`` is all zero already (None: not known),
        so that less of it is cleared. Returns a box outside which the result is all zero
        (whole 2x2 blocks: it may hold transparent pixels on its edges)."""
        self._key(y, u, v, c, (self.no_plane,) * 3, rgba.view(np.uint32)[..., 0], self.alpha,
                  self.whole if stale is None else stale)
        return self.extent()

    def extent(self) -> Box:
        """The box of the last picture's 2x2 blocks with a visible pixel; (0, 0, 0, 0) if none."""
        lo, hi = self.spans[:, 0], self.spans[:, 1]
        rows = np.flatnonzero(hi > lo)
        if rows.size == 0:
            return EMPTY
        return (2 * int(rows[0]), 2 * int(rows[-1]) + 2, 2 * int(lo[rows].min()),
                2 * int(hi[rows].max()))

    def _key(self, y, u, v, c, planes, rgba, matte, stale) -> None:
        if self.primary is None:
            self._start(lambda wanted: estimate_screen_planar(y, u, v, c, wanted))
        self._measure(self._stats, y, u, v, c)
        self._foreground(self.ratio, self.work[0])   # the tint, in the model's plane a
        if self.s.denoise:
            slope, offset = self._guided_model(self.guide, self.ratio, self.work)
        else:
            slope, offset = self.zero_a, self.ratio
        self.evidence(slope, offset, self.guide)
        self._core(slope, offset, self.guide)
        s = self.s
        pre = self.pre if self.shaped else matte
        planar_k.planar_alpha(y, (slope, offset), c.coefficients, self.ramp, self.alpha_rows,
                              pre)
        if self.shaped:   # OpenCV shapes a contiguous matte; the result goes to ``matte``
            np.copyto(self.alpha, pre)
            self._shape_matte(self.alpha)
            if matte is not self.alpha:
                np.copyto(matte, self.alpha)
        if rgba is not self.no_rgba:
            mode = planar_k.TO_RGBA
        else:
            mode = planar_k.OVER_BACKGROUND if self.flatten else planar_k.TO_PLANES
        planar_k.planar_compose((y, u, v), (pre, matte), (slope, offset, self.guide), self.gcols,
                                CELL, c.coefficients + BT709_LIMITED, self.ramp,
                                (self.primary, LIMITS[s.spill_limit], s.spill,
                                 LUMA709[self.primary]),
                                mode, self.background, self.compose_rows, planes, rgba, stale,
                                self.spans)
        self._update_grid()


def key(rgb: np.ndarray, settings: KeySettings | None = None) -> np.ndarray:
    """Key one RGB (H, W, 3) uint8 image; returns a new RGBA (H, W, 4) uint8 image.

    A convenience for tests and one-off use; the pipeline keys decoded planes in place.
    """
    h, w = rgb.shape[:2]
    out = np.empty((h, w, 4), np.uint8)
    rgba_k.rgb_to_rgba(np.ascontiguousarray(rgb), out)
    Keyer(settings or KeySettings(), w, h)(out)
    return out


def strided(shape: tuple[int, ...], dtype, padded: bool) -> np.ndarray:
    """A zero array of ``shape``, or (``padded``) a view into wider rows: the layout Numba types
    a decoded plane whose rows FFmpeg padded (a strided ``A`` array, not a ``C`` one)."""
    if not padded:
        return np.zeros(shape, dtype)
    return np.zeros((shape[0], shape[1] + 16, *shape[2:]), dtype)[:, :shape[1]]


def warm(planar: bool = False, source_padded: bool = False, outputs: tuple | None = None,
         flatten: bool = False) -> None:
    """Compile or load one path's keying kernels, called with the frame path's own argument
    types and layouts on tiny arrays: the planar key (to planes, or to RGBA), or the RGBA one
    (8- and 16-bit planes of each subsampling to RGBA, then the key).

    ``source_padded``: the decoded planes' rows are padded (``StreamInfo.padded_rows``).
    ``outputs``: whether the rows of the planes the planar key writes are padded, as
    (Y', Cb and Cr, A or None without an alpha plane) (see ``keyer.warmup.output_rows``), None
    when it writes RGBA only;
    ``flatten``: it composites over a background (an output without alpha). The screen-grid
    kernels run only once a frame shows enough screen, the core matte's fill only once a frame
    has an island: they are run here too."""
    from keyer.colour import ycbcr

    c = ycbcr(BT709)
    rgba = np.zeros((4, 4, 4), np.uint8)
    y = strided((4, 4), np.uint8, source_padded)
    u = strided((2, 2), np.uint8, source_padded)
    y[...], u[...] = 100, 90
    if planar:
        keyer = PlanarKeyer(KeySettings(), 4, 4)
        keyer.to_rgba(y, u, u, c, rgba)
        if outputs is not None:
            luma, chroma, alpha = outputs
            planes = (strided((4, 4), np.uint8, luma), strided((2, 2), np.uint8, chroma),
                      strided((2, 2), np.uint8, chroma),
                      None if alpha is None else strided((4, 4), np.uint8, alpha))
            background = (np.zeros((4, 4), np.uint8),) + (np.zeros((2, 2), np.uint8),) * 2
            keyer = PlanarKeyer(KeySettings(), 4, 4, background if flatten else None)
            keyer(y, u, u, c, *planes)
    else:
        for dt in (np.uint8, np.uint16):
            y = strided((4, 4), dt, source_padded)
            for cy, cx, sub in ((2, 2, (1, 1)), (4, 2, (1, 0)), (4, 4, (0, 0))):
                cc = strided((cy, cx), dt, source_padded)
                rgba_k.planes_to_rgba((y, cc, cc), sub, c.coefficients,
                                      kernels.chroma_rows(4, cx), rgba)
        rgba[..., 1] = 200
        keyer = Keyer(KeySettings(), 4, 4)
        keyer(rgba)
    keyer.counts[...] = CELL * CELL
    keyer._update_grid()
    # the light's check (a frame shows enough of the screen's colour)
    screen_k.light_gains(keyer.sums, keyer.counts, keyer.grid, keyer.primary,
                         np.float32(keyer.s.balance), keyer._cell_gains)
    screen_k.trend_eval(keyer._design, keyer._rhs, keyer._trend)   # once 12 cells are seen
    # the core matte runs on pictures of some size, and fills only once a frame has islands
    model = np.zeros((2, 2), np.float32)
    core_k.coarse_mask(model, model, model, keyer.q_opaque, np.zeros((1, 1), np.uint8),
                       np.zeros((1, 2), np.int64))
    core_k.candidate_box(np.zeros((1, 1), np.uint8), np.zeros((1, 2), np.int64),
                         np.zeros((1, 2), np.int64), np.zeros(4, np.int64))
    core_k.fill_core(np.zeros((1, 1), np.uint8), 0, 0, model, model.copy())
    # luma's evidence: the screen's noise measured, then faint coverage kept and shadows
    # dropped, once a frame shows enough screen
    keyer.evidence.warm()
