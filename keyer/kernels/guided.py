"""The ratio's kernels between the colour pass and the matte: the local foreground scale and the
solid tolerance (``foreground_scale``), then the guided filter (He & Sun; box sums with OpenCV's
reflected borders, row by row).

Both key paths run them on the ratio at chroma resolution (half size on the RGBA path; see
``keyer.keying._KeyBase``): ``foreground_scale`` rescales the ratio near the screen by the most
foreground-like ratio around it and applies the solid tolerance; ``guided_fit`` fits the local
linear model of the ratio by the luma guide, ``box_mean2`` takes the box means of its
coefficients. Nothing is allocated per call: row buffers come in ``scratch``.
"""
from __future__ import annotations

import numpy as np

from keyer._jit import kernel, kernel_parallel, prange


@kernel
def _solid(q, solid):
    """The ratio with the solid tolerance, ``solid`` = (q1, slope, q_op, q_floor): ratios up to
    ``q1`` move down to ``q_op`` (where the ramp gives alpha 1) and below, no lower than
    ``q_floor``; those from ``q1`` rise back to themselves with ``slope``; higher ones are
    kept. The floor keeps a strongly negative foreground ratio (a saturated colour opposite
    the screen's) from pulling the guided filter's edge out into a halo. Branch-free."""
    q1, slope, q_op, q_floor = solid
    return max(min(q, max(q_op + (q - q1) * slope, q - (q1 - q_op))), q_floor)


@kernel
def _near(cells, k, a, b):
    """``cells[k]``'s 3x3 minimum (``k`` = 0) or maximum (``k`` = 1) around cell (a, b)."""
    ch, cw = cells.shape[1], cells.shape[2]
    v = cells[k, a, b]
    for u in range(max(a - 1, 0), min(a + 2, ch)):
        for t in range(max(b - 1, 0), min(b + 2, cw)):
            v = min(v, cells[k, u, t]) if k == 0 else max(v, cells[k, u, t])
    return v


@kernel_parallel
def foreground_scale(q, solid, limits, cells):
    """In place on the ratio ``q`` (1 on the screen, 0 on a neutral foreground): near the
    screen, rescale it by the local foreground's own ratio, then apply the solid tolerance
    (``_solid``, ``solid`` as it takes it).

    An edge pixel mixes the screen with the foreground beside it, ``q = 1 - c * (1 - q_f)``:
    a foreground more opposed to the screen than neutral (``q_f`` < 0: red on blue) makes the
    coverage ``c`` look larger, an edge too opaque (a halo). Per cell of 2x2 samples: ``q_f``
    = the lowest ratio within the 3x3 cells around it (6x6 samples), taken only where some
    sample there is confidently screen (over ``screen_min``) and only if under 0; then
    ``q' = 1 - (1 - q) / (1 - q_f)``, the scale bilinear between cell centres. A veil or a
    strand away from the subject keeps its ratio (nothing more opaque than neutral is near);
    the interior far from the screen is left alone. ``cells`` (3, (h + 1) // 2, (w + 1) //
    2) float32: per cell its min, max, then the scale."""
    screen_min, qf_min = limits
    h, w = q.shape
    ch, cw = cells.shape[1], cells.shape[2]
    zero = np.float32(0.0)
    one = np.float32(1.0)
    for a in prange(ch):
        i0 = 2 * a
        i1 = min(i0 + 1, h - 1)
        for b in range(cw):
            j0 = 2 * b
            j1 = min(j0 + 1, w - 1)
            cells[0, a, b] = min(min(q[i0, j0], q[i0, j1]), min(q[i1, j0], q[i1, j1]))
            cells[1, a, b] = max(max(q[i0, j0], q[i0, j1]), max(q[i1, j0], q[i1, j1]))
    for a in prange(ch):
        for b in range(cw):
            qf = min(max(_near(cells, 0, a, b), qf_min), zero)
            qf = qf if _near(cells, 1, a, b) > screen_min else zero
            cells[2, a, b] = one / (one - qf)
    for i in prange(h):
        y = (i + 0.5) * 0.5 - 0.5
        a0 = int(np.floor(y))
        fy = np.float32(y - a0)
        a1 = min(a0 + 1, ch - 1)
        a0 = max(a0, 0)
        row = q[i]
        for j in range(w):
            x = (j + 0.5) * 0.5 - 0.5
            b0 = int(np.floor(x))
            fx = np.float32(x - b0)
            b1 = min(b0 + 1, cw - 1)
            b0 = max(b0, 0)
            k0 = cells[2, a0, b0] + fx * (cells[2, a0, b1] - cells[2, a0, b0])
            k1 = cells[2, a1, b0] + fx * (cells[2, a1, b1] - cells[2, a1, b0])
            k = k0 + fy * (k1 - k0)
            row[j] = _solid(one - (one - row[j]) * k, solid)


@kernel
def _reflect(i, n):
    """OpenCV's BORDER_REFLECT index (``fedcba|abcdefgh|hgfedcb``), reflected again while a
    reach longer than the line still falls outside it."""
    if n == 1:
        return 0
    while i < 0 or i >= n:
        i = -i - 1 if i < 0 else 2 * n - i - 1
    return i


@kernel
def _box_row(col, r, pad, out, scale):
    """``out[j] = scale * sum(col[j - r .. j + r])``, reflected at the ends, through ``pad``
    (length w + 2r). Every loop indexes from 0 (a run is sliced first): they vectorise."""
    w = col.shape[0]
    inner = pad[r:r + w]
    for j in range(w):
        inner[j] = col[j]
    for k in range(r):
        pad[r - 1 - k] = col[_reflect(-1 - k, w)]
        pad[r + w + k] = col[_reflect(w + k, w)]
    if r == 1:
        for j in range(w):
            out[j] = (pad[j] + pad[j + 1] + pad[j + 2]) * scale
        return
    for j in range(w):
        out[j] = pad[j]
    for k in range(1, 2 * r + 1):
        pk = pad[k:k + w]
        for j in range(w):
            out[j] += pk[j]
    for j in range(w):
        out[j] *= scale


@kernel
def _add_row(acc, row):
    """``acc += row`` (one output per loop: few runtime alias checks, so it vectorises)."""
    for j in range(acc.shape[0]):
        acc[j] += row[j]


@kernel_parallel
def guided_fit(guide, src, r, eps, scratch, a_out, b_out):
    """Per pixel, the guided filter's local linear model of ``src`` by ``guide`` over a
    (2r+1)^2 box (reflected borders): ``a = cov(g, s) / (var(g) + eps)``, ``b = mean(s) -
    a * mean(g)``. One pass: the four box means come from column sums of the rows in reach.
    ``scratch`` (chunks, 9, w + 2r) float32: one set of row buffers per chunk of rows (the
    rows are split into that many chunks), so nothing is allocated per call."""
    h, w = guide.shape
    n = np.float32(1.0 / ((2 * r + 1) * (2 * r + 1)))
    nchunk = scratch.shape[0]
    for t in prange(nchunk):
        rows = scratch[t]
        cg = rows[0, :w]
        cs = rows[1, :w]
        cgs = rows[2, :w]
        cgg = rows[3, :w]
        pad = rows[4]
        mg = rows[5, :w]
        ms = rows[6, :w]
        mgs = rows[7, :w]
        mgg = rows[8, :w]
        for i in range(t * h // nchunk, (t + 1) * h // nchunk):
            cg[:] = 0.0
            cs[:] = 0.0
            cgs[:] = 0.0
            cgg[:] = 0.0
            for di in range(-r, r + 1):
                gr = guide[_reflect(i + di, h)]
                sr = src[_reflect(i + di, h)]
                _add_row(cg, gr)
                _add_row(cs, sr)
                for j in range(w):   # one output per loop, as in _add_row
                    cgs[j] += gr[j] * sr[j]
                for j in range(w):
                    cgg[j] += gr[j] * gr[j]
            _box_row(cg, r, pad, mg, n)
            _box_row(cs, r, pad, ms, n)
            _box_row(cgs, r, pad, mgs, n)
            _box_row(cgg, r, pad, mgg, n)
            ar = a_out[i]
            br = b_out[i]
            for j in range(w):
                a = np.true_divide(mgs[j] - mg[j] * ms[j], mgg[j] - mg[j] * mg[j] + eps)
                ar[j] = a
                br[j] = ms[j] - a * mg[j]


@kernel_parallel
def box_mean2(a, b, r, scratch, a_out, b_out):
    """(2r+1)^2 box means of ``a`` and ``b`` (reflected borders); ``scratch`` as in
    ``guided_fit`` (its first three rows are used)."""
    h, w = a.shape
    n = np.float32(1.0 / ((2 * r + 1) * (2 * r + 1)))
    nchunk = scratch.shape[0]
    for t in prange(nchunk):
        rows = scratch[t]
        ca = rows[0, :w]
        cb = rows[1, :w]
        pad = rows[2]
        for i in range(t * h // nchunk, (t + 1) * h // nchunk):
            ca[:] = 0.0
            cb[:] = 0.0
            for di in range(-r, r + 1):
                _add_row(ca, a[_reflect(i + di, h)])
                _add_row(cb, b[_reflect(i + di, h)])
            _box_row(ca, r, pad, a_out[i], n)
            _box_row(cb, r, pad, b_out[i], n)
