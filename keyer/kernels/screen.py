"""The local screen estimate's kernels: a grid of cells over the picture, each holding the
screen's R, G, B and its colour difference ``d``, renewed every frame from the screen
statistics the key's ratio pass gathered (``rgba.ratio_and_screen_stats``,
``planar.planar_ratio_and_stats``).

``grid_means`` turns the statistics into per-cell means and the weights of a normalised
convolution (the Gaussian blur between the two kernels is OpenCV's, in ``keyer.keying``);
``grid_blend`` blends the result into the grid.
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
    """Screen primary minus a balance-weighted mix of the other two (max/min) channels."""
    p, o1, o2 = _split(r, g, b, primary)
    hi = o1 if o1 > o2 else o2
    lo = o2 if o1 > o2 else o1
    return p - (balance * hi + (np.float32(1.0) - balance) * lo)


def screen_difference(rgb: tuple[float, float, float], primary: int, balance: float) -> float:
    """``d`` of one screen colour (R, G, B floats), as the kernels compute it: the grid's
    difference before any frame has been measured."""
    return _difference(rgb[0], rgb[1], rgb[2], primary, balance)


@kernel
def grid_means(sums, counts, min_count, fresh, num, den):
    """Per cell: mean screen colour (``fresh``), and its count-weighted version for the
    normalised convolution (``num``, ``den``); cells under ``min_count`` weigh nothing."""
    gh, gw = counts.shape
    for a in range(gh):
        for b in range(gw):
            n = counts[a, b]
            wgt = n if n >= min_count else 0.0
            inv = 1.0 / n if n > 0.0 else 0.0
            for c in range(3):
                fresh[a, b, c] = sums[a, b, c] * inv
                num[a, b, c] = fresh[a, b, c] * wgt
            den[a, b] = wgt


@kernel
def grid_blend(counts, min_count, fresh, num, den, rate, primary, balance, grid):
    """Blend this frame's estimate into ``grid``: measured cells take their own mean, holes
    take the blurred neighbours' (``num / den``); then each cell's own difference ``d``."""
    gh, gw = counts.shape
    dmax = 0.0
    for a in range(gh):
        for b in range(gw):
            if den[a, b] > dmax:
                dmax = den[a, b]
    for a in range(gh):
        for b in range(gw):
            enough = counts[a, b] >= min_count
            known = enough or den[a, b] > 0.02 * dmax
            if known:
                for c in range(3):
                    if enough:
                        f = fresh[a, b, c]
                    else:
                        f = num[a, b, c] / max(den[a, b], 1e-3)
                    grid[a, b, c] += (f - grid[a, b, c]) * rate
            grid[a, b, 3] = _difference(grid[a, b, 0], grid[a, b, 1], grid[a, b, 2], primary,
                                        balance)
