"""The ratio's kernels between the colour pass and the matte: the local foreground scale and the
solid tolerance (``foreground_scale``), then the guided filter (He & Sun; box sums with OpenCV's
reflected borders, row by row).

Both key paths run them on the ratio at chroma resolution (half size on the RGBA path; see
``keyer.keying._KeyBase``): ``foreground_scale`` rescales the ratio near the screen by the most
foreground-like ratio around it and applies the solid tolerance; ``guided_fit`` fits the local
linear model of the ratio by the luma guide (its coefficients are used as they are, not
box-averaged again). Nothing is allocated per call: row buffers come in ``scratch``.
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
def _scaled(q, k, solid):
    """One ratio scaled by ``k`` towards 1 (``1 - (1 - q) * k``), then ``_solid``."""
    one = np.float32(1.0)
    return _solid(one - (one - q) * k, solid)


@kernel
def _scale_row(row, kr, solid):
    """``_scaled`` along one row of ratios, the scale ``kr`` given per cell of 2 samples and
    taken bilinearly between cell centres (a sample sits a quarter cell off its cell's); only
    ``_solid`` where the scale is 1 all along (most rows: nothing near is more than opaque)."""
    w = row.shape[0]
    cw = kr.shape[0]
    f1 = np.float32(0.25)
    f3 = np.float32(0.75)
    low = np.float32(1.0)
    for b in range(cw):
        low = min(low, kr[b])
    if low == np.float32(1.0):
        for j in range(w):
            row[j] = _solid(row[j], solid)
        return
    if cw == 1:
        for j in range(w):
            row[j] = _scaled(row[j], kr[0], solid)
        return
    row[0] = _scaled(row[0], kr[0], solid)
    row[1] = _scaled(row[1], f3 * kr[0] + f1 * kr[1], solid)
    inner = row[2:]
    left = kr[:cw - 2]
    mid = kr[1:cw - 1]
    right = kr[2:]
    for b in range(cw - 2):   # cells 1 .. cw - 2: samples 2b + 2 and 2b + 3
        inner[2 * b] = _scaled(inner[2 * b], f1 * left[b] + f3 * mid[b], solid)
        inner[2 * b + 1] = _scaled(inner[2 * b + 1], f3 * mid[b] + f1 * right[b], solid)
    j = 2 * (cw - 1)
    row[j] = _scaled(row[j], f1 * kr[cw - 2] + f3 * kr[cw - 1], solid)
    if j + 1 < w:
        row[j + 1] = _scaled(row[j + 1], kr[cw - 1], solid)


@kernel_parallel
def foreground_scale(q, solid, limits, cells):
    """In place on the ratio ``q`` (1 on the screen, 0 on a neutral foreground): near the
    screen, rescale it by the local foreground's own ratio, then apply the solid tolerance
    (``_solid``, ``solid`` as it takes it).

    An edge pixel mixes the screen with the foreground beside it, ``q = 1 - c * (1 - q_f)``:
    a foreground more opposed to the screen than neutral (``q_f`` < 0: red on blue) makes the
    coverage ``c`` look larger, an edge too opaque (a halo). Per cell of 2x2 samples: ``q_f``
    = the lowest ratio within the 3x3 cells around it (6x6 samples), taken only where some
    sample there is confidently screen (over ``screen_min``), and only between ``qf_min`` and
    0 (``limits`` = (screen_min, qf_min)); then ``q' = 1 - (1 - q) / (1 - q_f)``, the scale
    bilinear between cell centres. A veil or a strand away from the subject keeps its ratio
    (nothing more opaque than neutral is near); the interior far from the screen is left
    alone. ``cells`` (5, (h + 1) // 2, (w + 1) // 2) float32: per cell its min, max, their
    row-wise 3-cell min and max (then the scale's rows), the scale. Each pass is a loop over
    contiguous rows, in threads by rows; ~0.3 ms at 1080p (one thread)."""
    screen_min, qf_min = limits
    h, w = q.shape
    ch, cw = cells.shape[1], cells.shape[2]
    lo, hi, rlo, rhi, scale = cells[0], cells[1], cells[2], cells[3], cells[4]
    zero = np.float32(0.0)
    one = np.float32(1.0)
    f1 = np.float32(0.25)
    f3 = np.float32(0.75)
    half = w // 2
    for a in prange(ch):
        r0 = q[2 * a]
        r1 = q[min(2 * a + 1, h - 1)]
        la = lo[a]
        ha = hi[a]
        for b in range(half):
            la[b] = min(min(r0[2 * b], r0[2 * b + 1]), min(r1[2 * b], r1[2 * b + 1]))
        for b in range(half):
            ha[b] = max(max(r0[2 * b], r0[2 * b + 1]), max(r1[2 * b], r1[2 * b + 1]))
        if w % 2:
            la[cw - 1] = min(r0[w - 1], r1[w - 1])
            ha[cw - 1] = max(r0[w - 1], r1[w - 1])
        rl = rlo[a]
        rh = rhi[a]
        rl[0] = min(la[0], la[min(1, cw - 1)])
        rh[0] = max(ha[0], ha[min(1, cw - 1)])
        rl[cw - 1] = min(la[cw - 1], la[max(cw - 2, 0)])
        rh[cw - 1] = max(ha[cw - 1], ha[max(cw - 2, 0)])
        for b in range(1, cw - 1):
            rl[b] = min(min(la[b - 1], la[b]), la[b + 1])
        for b in range(1, cw - 1):
            rh[b] = max(max(ha[b - 1], ha[b]), ha[b + 1])
    for a in prange(ch):
        up = rlo[max(a - 1, 0)]
        mid = rlo[a]
        down = rlo[min(a + 1, ch - 1)]
        hup = rhi[max(a - 1, 0)]
        hmid = rhi[a]
        hdown = rhi[min(a + 1, ch - 1)]
        sa = scale[a]
        for b in range(cw):
            qf = min(max(min(min(up[b], mid[b]), down[b]), qf_min), zero)
            near = max(max(hup[b], hmid[b]), hdown[b]) > screen_min
            sa[b] = np.true_divide(one, one - (qf if near else zero))
    for a in prange(ch):   # the scale between cell rows, into the (now free) row buffers
        up = scale[max(a - 1, 0)]
        mid = scale[a]
        down = scale[min(a + 1, ch - 1)]
        k0 = rlo[a]
        k1 = rhi[a]
        for b in range(cw):
            k0[b] = f1 * up[b] + f3 * mid[b]
        for b in range(cw):
            k1[b] = f3 * mid[b] + f1 * down[b]
    for a in prange(ch):
        _scale_row(q[2 * a], rlo[a], solid)
        if 2 * a + 1 < h:
            _scale_row(q[2 * a + 1], rhi[a], solid)


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
