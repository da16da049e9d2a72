"""The core matte's kernels: find the transparent islands inside a confidently opaque subject
and mark them solid, on the guided filter's model (chroma resolution on the planar path, half
size on the RGBA path), before any full-resolution alpha is made.

``coarse_mask`` pools the model 2x2 into a coarse mask (1 = some sample is not confidently
opaque) and finds each row's opaque cells; OpenCV labels that mask's connected components in
the opaque cells' box (in ``keyer.keying``: its labelling is faster than anything we would
write); ``fill_core`` writes
the islands chosen into the model as ``FILLED``: opaque, and colour kept as it is (no spill
removal: a screen-coloured detail keeps its colour).
"""
from __future__ import annotations

import numpy as np

from keyer._jit import kernel

# The model's offset (with slope 0) of a filled sample: a ratio far below any real one, so the
# alpha ramp gives 1 and the colour kernels know to keep the colour (ratio < CORE_Q).
FILLED = np.float32(-8.0)
CORE_Q = np.float32(-4.0)


@kernel
def coarse_mask(slope, offset, guide, q_opaque, coarse, spans):
    """``coarse[i, j]`` stays 1 where any of the model's samples ``(2i..2i+1, 2j..2j+1)`` has
    ``q = slope * guide + offset`` over ``q_opaque`` (not confidently opaque), else becomes 0
    (an odd last row or column pools what it has): ``coarse`` comes holding the same test of
    the ratio before the foreground scale (``guided.foreground_scale``'s ``pre``), so a cell is
    opaque when either calls it so; ``spans`` (coarse rows, 2) int64 gets each coarse
    row's first and last + 1 opaque cell (0, 0: none), from which the caller boxes them. Each
    row's loop is branch-free (it vectorises); one thread (~0.25 ms at 1080p: another parallel
    region would cost its threads' wake-up and wait as much)."""
    h, w = offset.shape
    ch, cw = coarse.shape
    for ci in range(ch):
        i0 = 2 * ci
        i1 = min(i0 + 1, h - 1)
        a0, b0, g0 = slope[i0], offset[i0], guide[i0]
        a1, b1, g1 = slope[i1], offset[i1], guide[i1]
        row = coarse[ci]
        for cj in range(w // 2):
            j0 = 2 * cj
            q = max(max(a0[j0] * g0[j0] + b0[j0], a0[j0 + 1] * g0[j0 + 1] + b0[j0 + 1]),
                    max(a1[j0] * g1[j0] + b1[j0], a1[j0 + 1] * g1[j0 + 1] + b1[j0 + 1]))
            row[cj] = row[cj] if q > q_opaque else np.uint8(0)
        if w % 2:
            q = max(a0[w - 1] * g0[w - 1] + b0[w - 1], a1[w - 1] * g1[w - 1] + b1[w - 1])
            row[cw - 1] = row[cw - 1] if q > q_opaque else np.uint8(0)
        lo = 0
        while lo < cw and row[lo] != 0:
            lo += 1
        hi = cw
        while hi > lo and row[hi - 1] != 0:
            hi -= 1
        spans[ci, 0] = lo if hi > lo else 0
        spans[ci, 1] = hi if hi > lo else 0


@kernel
def candidate_box(coarse, spans, cols, box):
    """The box (rows r0..r1, columns c0..c1, end exclusive; empty: all 0) of the coarse mask's
    candidate cells: not opaque, yet between opaque cells both along their row (``spans``, from
    ``coarse_mask``) and along their column (``cols`` (coarse columns, 2) int64 gets each
    column's first and last + 1 opaque row). Any other non-opaque cell has a straight run of
    non-opaque cells to the picture's edge, so only a candidate can be part of an enclosed
    island, and a convex subject has none (no labelling needed)."""
    ch, cw = coarse.shape
    for cj in range(cw):
        cols[cj, 0] = ch
        cols[cj, 1] = 0
    for ci in range(ch):
        row = coarse[ci]
        for cj in range(spans[ci, 0], spans[ci, 1]):
            if row[cj] == 0:
                cols[cj, 0] = min(cols[cj, 0], ci)
                cols[cj, 1] = ci + 1
    r0, r1, c0, c1 = ch, 0, cw, 0
    for ci in range(ch):
        row = coarse[ci]
        for cj in range(spans[ci, 0], spans[ci, 1]):
            if row[cj] != 0 and cols[cj, 0] < ci < cols[cj, 1]:
                r0 = min(r0, ci)
                r1 = max(r1, ci + 1)
                c0 = min(c0, cj)
                c1 = max(c1, cj + 1)
    if r1 <= r0:
        r0, r1, c0, c1 = 0, 0, 0, 0
    box[0] = r0
    box[1] = r1
    box[2] = c0
    box[3] = c1


@kernel
def fill_core(fill, r0, c0, slope, offset):
    """Samples under the coarse cells marked in ``fill`` (a box of the coarse mask whose top
    left cell is ``(r0, c0)``) become ``FILLED``: slope 0, offset ``FILLED``."""
    h, w = offset.shape
    fh, fw = fill.shape
    for a in range(fh):
        for b in range(fw):
            if fill[a, b] == 0:
                continue
            for i in range(2 * (r0 + a), min(2 * (r0 + a) + 2, h)):
                for j in range(2 * (c0 + b), min(2 * (c0 + b) + 2, w)):
                    slope[i, j] = 0.0
                    offset[i, j] = FILLED
