"""The local screen estimate's kernels: a grid of cells over the picture, each holding the
screen's R, G, B and its colour difference from neutral ``d_S``, renewed every frame from the screen
statistics the key's ratio pass gathered (``rgba.ratio_and_screen_stats``,
``planar.planar_ratio_and_stats``).

``grid_means`` turns the statistics into per-cell means and, for a normalised convolution,
their weighted residuals from a smooth trend (the trend's least-squares fit and the Gaussian
blur between the two kernels are numpy's and OpenCV's, in ``keyer.keying``); ``grid_blend``
blends the result into the grid, a clean plate that only confidently-screen pixels teach.
"""
from __future__ import annotations

import numpy as np

from keyer._jit import kernel


@kernel
def _split(r, g, b, primary):
    """(screen channel, other, other) for primary 0 / 1 / 2 = red / green / blue."""
    if primary == 1:
        return g, r, b
    if primary == 2:
        return b, r, g
    return r, g, b


@kernel
def _difference(r, g, b, primary, balance):
    """Screen primary minus a balance-weighted mix of the other two (max/min) channels. Of a
    colour minus the local screen (each channel's excess over it) this is linear along any mix
    of a foreground with that screen (``keyer.keying``)."""
    p, o1, o2 = _split(r, g, b, primary)
    hi = o1 if o1 > o2 else o2
    lo = o2 if o1 > o2 else o1
    return p - (balance * hi + (np.float32(1.0) - balance) * lo)


def screen_difference(rgb: tuple[float, float, float], primary: int, balance: float) -> float:
    """``d_S`` of one screen colour (R, G, B floats), as the kernels compute it: the grid's
    difference before any frame has been measured. It is minus ``_difference`` of a neutral
    colour's excess over the screen, ``_difference`` of the screen with ``1 - balance``."""
    return _difference(rgb[0], rgb[1], rgb[2], primary, 1.0 - balance)


def light_scale(rgb: tuple[float, float, float], primary: int, balance: float) -> float:
    """How much of a change of the light on the screen ``rgb`` the ratio sees: the ratio of the
    screen under ``k`` times the light is ``1 + (k - 1) * light_scale`` (its own difference over
    ``d_S``: under 1 where the other channels differ)."""
    d = screen_difference(rgb, primary, balance)
    return _difference(rgb[0], rgb[1], rgb[2], primary, balance) / d if d > 0 else 1.0


def purity(rgb: tuple[float, float, float], primary: int, balance: float) -> float:
    """A colour's own difference (``_difference``) over its primary channel: the share of it
    that is the screen's hue. Light and shade scale every channel alike and leave it alone; a
    mix with any other colour lowers it (``keyer.keying.PURITY_MIN``)."""
    p = rgb[primary]
    return _difference(rgb[0], rgb[1], rgb[2], primary, balance) / p if p > 0 else 0.0


@kernel
def light_gains(sums, counts, grid, primary, balance, gains):
    """Per cell, the light on its confidently-screen pixels against the plate's: the gain ``k``
    with their mean colour ``k`` times the cell's plate, ``_difference(mean) / _difference(S)``
    (light scales every channel alike, and ``_difference`` with them), into ``gains`` (0 where
    the cell has none); returns the pixels' sum of it, ``sum(count * gain)``."""
    gh, gw = counts.shape
    total = 0.0
    for a in range(gh):
        for b in range(gw):
            n = counts[a, b]
            own = _difference(grid[a, b, 0], grid[a, b, 1], grid[a, b, 2], primary, balance)
            k = 0.0
            if n > 0.0 and own > 1.0:
                inv = 1.0 / n
                k = _difference(sums[a, b, 0] * inv, sums[a, b, 1] * inv, sums[a, b, 2] * inv,
                                primary, balance) / own
            gains[a, b] = k
            total += n * k
    return total


@kernel
def grid_means(sums, counts, min_count, trend, fresh, num, den):
    """Per cell: mean screen colour (``fresh``), and for the normalised convolution its
    count-weighted difference from the smooth ``trend`` (``num``) and the weights (``den``);
    cells under ``min_count`` weigh nothing."""
    gh, gw = counts.shape
    for a in range(gh):
        for b in range(gw):
            n = counts[a, b]
            wgt = n if n >= min_count else 0.0
            inv = 1.0 / n if n > 0.0 else 0.0
            for c in range(3):
                fresh[a, b, c] = sums[a, b, c] * inv
                num[a, b, c] = (fresh[a, b, c] - trend[a, b, c]) * wgt
            den[a, b] = wgt


@kernel
def grid_blend(counts, min_count, fresh, fill, trend, rate, primary, balance, seen, grid):
    """Blend this frame's estimate into ``grid``, a clean plate of the screen learned over
    time: a cell with at least ``min_count`` confidently-screen pixels this frame moves to their
    mean by ``rate`` and is marked ``seen``; a cell the subject covers keeps what it learned
    when it was last seen; a cell never seen moves to the smooth ``trend`` of the seen cells
    plus its measured neighbours' blurred residual from it (``fill`` = (num, den) of the
    normalised convolution; where the weight ``den`` is under a quarter of its maximum, the
    residual fades to 0). Then each cell's ``d_S`` (``screen_difference``)."""
    num, den = fill
    gh, gw = counts.shape
    dmax = np.float32(1e-3)
    for a in range(gh):
        for b in range(gw):
            dmax = max(dmax, den[a, b])
    floor = np.float32(0.25) * dmax
    for a in range(gh):
        for b in range(gw):
            enough = counts[a, b] >= min_count
            if enough or seen[a, b] == 0:
                inv = np.float32(1.0) / max(den[a, b], floor)
                for c in range(3):
                    f = fresh[a, b, c] if enough else trend[a, b, c] + num[a, b, c] * inv
                    grid[a, b, c] += (f - grid[a, b, c]) * rate
            if enough:
                seen[a, b] = 1
            grid[a, b, 3] = _difference(grid[a, b, 0], grid[a, b, 1], grid[a, b, 2], primary,
                                        np.float32(1.0) - balance)


@kernel
def trend_normal(seen, grid, design, gram, rhs):
    """The normal equations of the plate's trend: ``gram`` (6, 6) = sum of ``p p^T`` and
    ``rhs`` (6, 3) = sum of ``p * colour`` over the seen cells (``p`` = the cell's row of
    ``design``: 1, x, y, x^2, xy, y^2), float64. Returns how many cells were seen."""
    gh, gw = seen.shape
    k = design.shape[1]
    gram[...] = 0.0
    rhs[...] = 0.0
    n = 0
    for a in range(gh):
        for b in range(gw):
            if seen[a, b] == 0:
                continue
            n += 1
            p = design[a * gw + b]
            for u in range(k):
                for v in range(k):
                    gram[u, v] += p[u] * p[v]
                for c in range(3):
                    rhs[u, c] += p[u] * grid[a, b, c]
    return n


@kernel
def trend_eval(design, coef, trend):
    """``trend`` (gh, gw, 3) = ``design @ coef``: the fitted quadratic at every cell."""
    gh, gw = trend.shape[0], trend.shape[1]
    k = design.shape[1]
    for a in range(gh):
        for b in range(gw):
            p = design[a * gw + b]
            for c in range(3):
                t = 0.0
                for u in range(k):
                    t += p[u] * coef[u, c]
                trend[a, b, c] = t
