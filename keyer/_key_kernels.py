"""Numba kernels of the chroma key. Pure functions ``(inputs, scalars, out)``; no validation.

One pass (``convert_and_ratio``) turns the decoded planes into RGB, computes each pixel's
colour-difference ratio against a smooth local estimate of the screen colour, and gathers the
screen statistics the next frame's estimate is made from. A second pass (``matte_and_despill``)
turns the (filtered) ratio into alpha and removes spill. Helpers used by a kernel live in this
file: Numba's cache only watches the module that defines a kernel.
"""
from __future__ import annotations

import numpy as np

from keyer._jit import kernel, kernel_parallel, prange


@kernel
def _clamp_u8(x):
    if x <= 0.0:
        return np.uint8(0)
    if x >= 255.0:
        return np.uint8(255)
    return np.uint8(x + 0.5)


@kernel
def _split(r, g, b, primary):
    """(screen channel, other, other) for primary 0 / 1 / 2 = red / green / blue."""
    if primary == 1:
        return g, r, b
    if primary == 2:
        return b, r, g
    return r, g, b


@kernel
def _join(p, o1, o2, primary):
    """Inverse of ``_split``: back to (r, g, b)."""
    if primary == 1:
        return o1, p, o2
    if primary == 2:
        return o1, o2, p
    return p, o1, o2


@kernel
def _difference(r, g, b, primary, balance):
    """Screen primary minus a balance-weighted mix of the other two (max/min) channels."""
    p, o1, o2 = _split(r, g, b, primary)
    hi = o1 if o1 > o2 else o2
    lo = o2 if o1 > o2 else o1
    return p - (balance * hi + (np.float32(1.0) - balance) * lo)


@kernel_parallel
def planes_to_rgba(y, u, v, sub_x, sub_y, y_off, y_scale, c_off, c_scale,
                   rv, gu, gv, bu, rows, out):
    """Y'CbCr planes (uint8 or uint16, any of 4:2:0 / 4:2:2 / 4:4:4) to RGBA uint8, A = 255.

    Chroma is upsampled bilinearly with MPEG-2/H.264 siting (horizontally co-sited with even
    luma columns; vertically halfway between luma rows for 4:2:0), so edges are not stair-stepped.
    ``R = Y + rv*Cr``, ``G = Y - gu*Cb - gv*Cr``, ``B = Y + bu*Cb`` with Y, Cb, Cr normalised by
    ``(x - off) * scale`` to 0..255 and -127.5..127.5. Each row first interpolates its chroma
    rows vertically (once per chroma sample), then each pixel only horizontally. ``rows``
    (chunks, 2, chroma width + 1) float32: each chunk of rows' buffers for that (see
    ``chroma_rows``), so nothing is allocated inside (which would also make loading the kernel
    import numba's array library).
    """
    h, w = y.shape
    hc, wc = u.shape
    nchunk = rows.shape[0]
    for t in prange(nchunk):
        cb_row = rows[t, 0]
        cr_row = rows[t, 1]
        for i in range(t * h // nchunk, (t + 1) * h // nchunk):
            if sub_y:
                cy = (i - 0.5) * 0.5
            else:
                cy = float(i)
            r0 = int(np.floor(cy))
            fy = np.float32(cy - r0)
            r1 = r0 + 1
            if r0 < 0:
                r0 = 0
            if r1 > hc - 1:
                r1 = hc - 1
            if r0 > hc - 1:
                r0 = hc - 1
            for k in range(wc):
                cb_row[k] = ((1 - fy) * u[r0, k] + fy * u[r1, k] - c_off) * c_scale
                cr_row[k] = ((1 - fy) * v[r0, k] + fy * v[r1, k] - c_off) * c_scale
            cb_row[wc] = cb_row[wc - 1]
            cr_row[wc] = cr_row[wc - 1]
            for j in range(w):
                if sub_x:
                    k = j >> 1
                    if j & 1:
                        cb = np.float32(0.5) * (cb_row[k] + cb_row[k + 1])
                        cr = np.float32(0.5) * (cr_row[k] + cr_row[k + 1])
                    else:
                        cb = cb_row[k]
                        cr = cr_row[k]
                else:
                    cb = cb_row[j]
                    cr = cr_row[j]
                yy = (np.float32(y[i, j]) - y_off) * y_scale
                out[i, j, 0] = _clamp_u8(yy + rv * cr)
                out[i, j, 1] = _clamp_u8(yy - gu * cb - gv * cr)
                out[i, j, 2] = _clamp_u8(yy + bu * cb)
                out[i, j, 3] = 255


ROW_CHUNKS = 32   # row chunks that planes_to_rgba and planar_alpha share among threads


def chroma_rows(height: int, chroma_width: int) -> np.ndarray:
    """Two float32 rows of ``chroma_width + 1`` per chunk of a picture's ``height`` rows: the
    buffers ``planes_to_rgba`` and ``planar_alpha`` interpolate chroma-resolution rows into,
    made once per picture size."""
    return np.zeros((max(1, min(height, ROW_CHUNKS)), 2, chroma_width + 1), np.float32)


@kernel
def _grid_row_d(grid, gy, rds):
    """The screen's difference ``d`` along grid row position ``gy`` (cell units), interpolated
    between grid rows, per grid column into ``rds`` (length columns + 1, the last repeated)."""
    gh, gw = grid.shape[0], grid.shape[1]
    a0 = int(np.floor(gy))
    fy = gy - a0
    if a0 < 0:
        a0 = 0
        fy = 0.0
    a1 = a0 + 1 if a0 + 1 < gh else gh - 1
    for c in range(gw):
        rds[c] = (1.0 - fy) * grid[a0, c, 3] + fy * grid[a1, c, 3]
    rds[gw] = rds[gw - 1]


@kernel
def _clear_stats_row(sums, counts, gi):
    """Zero one grid row of the screen statistics (each thread owns its grid rows)."""
    for c in range(counts.shape[1]):
        sums[gi, c, 0] = 0.0
        sums[gi, c, 1] = 0.0
        sums[gi, c, 2] = 0.0
        counts[gi, c] = 0.0


@kernel_parallel
def ratio_and_screen_stats(rgba, grid, cell, col0, colf, primary, balance, screen_min,
                           ratio, luma, sums, counts, rows):
    """Per pixel: ``ratio = d(pixel) / d(local screen)`` (1 on the screen, <= 0 on neutral
    foreground); per grid cell: sums and counts of pixels that look like screen.

    ``grid`` is (gh, gw, 4) float32: the screen's R, G, B and its own difference ``d`` per cell,
    sampled bilinearly at cell centres (``col0``/``colf``: each column's left cell and weight,
    computed once per size). A pixel counts as screen when its ratio is over ``screen_min``.
    ``luma`` gets BT.709 luma in 0..1: the full-resolution guide for the matte filter.
    Threads split the rows by grid row, so the statistics have no races. ``rows`` (grid rows,
    grid columns + 1) float32: each grid row's buffer for the screen's difference along it.
    """
    h, w = ratio.shape
    gh, gw = grid.shape[0], grid.shape[1]
    for gi in prange(gh):
        rds = rows[gi]
        _clear_stats_row(sums, counts, gi)
        i_end = min((gi + 1) * cell, h)
        for i in range(gi * cell, i_end):
            _grid_row_d(grid, (i + 0.5) / cell - 0.5, rds)
            for j in range(w):
                b0 = col0[j]
                ds = rds[b0] + colf[j] * (rds[b0 + 1] - rds[b0])
                r = np.float32(rgba[i, j, 0])
                g = np.float32(rgba[i, j, 1])
                b = np.float32(rgba[i, j, 2])
                d = _difference(r, g, b, primary, balance)
                q = d / ds if ds > 1.0 else np.float32(0.0)
                ratio[i, j] = q
                luma[i, j] = (np.float32(0.2126 / 255.0) * r + np.float32(0.7152 / 255.0) * g
                              + np.float32(0.0722 / 255.0) * b)
                if q > screen_min:
                    cj = j // cell
                    sums[gi, cj, 0] += r
                    sums[gi, cj, 1] += g
                    sums[gi, cj, 2] += b
                    counts[gi, cj] += 1.0


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


@kernel
def _grid_sample(grid, cell, i, j, ch):
    gh, gw = grid.shape[0], grid.shape[1]
    gy = (i + 0.5) / cell - 0.5
    gx = (j + 0.5) / cell - 0.5
    a0 = int(np.floor(gy))
    b0 = int(np.floor(gx))
    fy = gy - a0
    fx = gx - b0
    if a0 < 0:
        a0 = 0
        fy = 0.0
    if b0 < 0:
        b0 = 0
        fx = 0.0
    a1 = a0 + 1 if a0 + 1 < gh else gh - 1
    b1 = b0 + 1 if b0 + 1 < gw else gw - 1
    return ((1.0 - fy) * ((1.0 - fx) * grid[a0, b0, ch] + fx * grid[a0, b1, ch])
            + fy * ((1.0 - fx) * grid[a1, b0, ch] + fx * grid[a1, b1, ch]))


@kernel
def _despill(r, g, b, primary, limit_mode, spill, lum_p):
    """Limit the primary channel to max / average / min of the others (``limit_mode`` 0/1/2),
    removing ``spill`` of the excess and adding back the luminance it carried."""
    p, o1, o2 = _split(r, g, b, primary)
    mx = o1 if o1 > o2 else o2
    mn = o2 if o1 > o2 else o1
    if limit_mode == 0:
        lim = mx
    elif limit_mode == 2:
        lim = mn
    else:
        lim = np.float32(0.5) * (mx + mn)
    excess = p - lim
    if excess > 0.0:
        removed = excess * spill
        add = lum_p * removed
        p = p - removed + add
        o1 = o1 + add
        o2 = o2 + add
    return _join(p, o1, o2, primary)


@kernel_parallel
def matte_and_despill(rgba, mean_a, mean_b, guide, grid, cell, hi, inv_width, clip_black,
                      inv_clip, primary, limit_mode, spill, lum_p):
    """Alpha from the filtered ratio, then spill removal, in place on ``rgba``.

    The ratio is the guided filter's output ``mean_a * guide + mean_b`` (pass ``mean_a`` = 0
    and ``mean_b`` = the ratio to use it unfiltered). ``alpha = clip((hi - ratio) * inv_width)``, then clip black/white:
    ``alpha = clip((alpha - clip_black) * inv_clip)``.
    Edge pixels (0 < alpha < 1) are un-mixed from the local screen colour S using the linear
    coverage estimate ``c = 1 - ratio``: ``F = (C - (1 - c) * S) / c`` (screen subtraction:
    removes the fringe without shifting hues). Then spill: the primary channel is limited to ``L`` = max / average / min
    of the other two (``limit_mode`` 0 / 1 / 2); ``spill`` (0..1) of the excess is removed and
    the luminance it carried (``lum_p`` x removed) is added back to all three channels, so
    edges neither darken nor brighten. With the ``max`` limit a yellow stays yellow.
    """
    h, w = guide.shape
    for i in prange(h):
        for j in range(w):
            q = mean_a[i, j] * guide[i, j] + mean_b[i, j]
            a = (hi - q) * inv_width
            a = (a - clip_black) * inv_clip
            if a < 0.0:
                a = 0.0
            elif a > 1.0:
                a = 1.0
            rgba[i, j, 3] = np.uint8(a * 255.0 + 0.5)
            if a <= 0.0 or spill <= 0.0:
                continue
            r = float(rgba[i, j, 0])
            g = float(rgba[i, j, 1])
            b = float(rgba[i, j, 2])
            if q > 0.0 and a < 1.0:
                # the linear coverage estimate is 1 - ratio (the shaped alpha is steeper)
                k = min(q, 1.0) * spill
                inv_a = 1.0 / (1.0 - k) if k < 0.999 else 1000.0
                r = (r - k * _grid_sample(grid, cell, i, j, 0)) * inv_a
                g = (g - k * _grid_sample(grid, cell, i, j, 1)) * inv_a
                b = (b - k * _grid_sample(grid, cell, i, j, 2)) * inv_a
                r = min(max(r, 0.0), 255.0)
                g = min(max(g, 0.0), 255.0)
                b = min(max(b, 0.0), 255.0)
            r, g, b = _despill(r, g, b, primary, limit_mode, spill, lum_p)
            rgba[i, j, 0] = _clamp_u8(r)
            rgba[i, j, 1] = _clamp_u8(g)
            rgba[i, j, 2] = _clamp_u8(b)


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
            grid[a, b, 3] = _difference(grid[a, b, 0], grid[a, b, 1], grid[a, b, 2], primary, balance)


@kernel_parallel
def rgb_to_rgba(rgb, out):
    """Copy packed RGB24 into RGBA with A = 255 (sources swscale had to convert)."""
    h, w = rgb.shape[0], rgb.shape[1]
    for i in prange(h):
        for j in range(w):
            out[i, j, 0] = rgb[i, j, 0]
            out[i, j, 1] = rgb[i, j, 1]
            out[i, j, 2] = rgb[i, j, 2]
            out[i, j, 3] = 255


# --- Planar key: 8-bit 4:2:0 Y'CbCr in, the encoder's Y'CbCr(A) planes out, no RGB frame. ---
#
# In Y'CbCr every RGB channel is ``Y + linear(Cb, Cr)``, so the colour difference (and with it
# the matte's ratio) depends on chroma alone: it is computed once per chroma sample, a quarter
# of the pixels. Luma only guides the matte to full resolution, and despill with luminance
# restore leaves luma as it was, so opaque pixels keep their decoded Y' untouched.


@kernel
def _block_rgb(y0, y1, ur, vr, cj, y_off, y_scale, c_off, c_scale, rv, gu, gv, bu):
    """(R, G, B, normalised mean Y') of 2x2 block ``cj`` of luma rows ``y0``/``y1`` with its
    chroma sample in rows ``ur``/``vr``; RGB clamped to 0..255, all float32 (so the loops
    calling this vectorise)."""
    f32 = np.float32
    ja = 2 * cj
    s4 = np.int32(y0[ja]) + np.int32(y0[ja + 1]) + np.int32(y1[ja]) + np.int32(y1[ja + 1])
    yy = (f32(s4) * f32(0.25) - y_off) * y_scale
    cb = (f32(ur[cj]) - c_off) * c_scale
    cr = (f32(vr[cj]) - c_off) * c_scale
    r = min(max(yy + rv * cr, f32(0.0)), f32(255.0))
    g = min(max(yy - gu * cb - gv * cr, f32(0.0)), f32(255.0))
    b = min(max(yy + bu * cb, f32(0.0)), f32(255.0))
    return r, g, b, yy


@kernel
def _row_weights(ci, cell, gh):
    """Grid rows above and below chroma row ``ci``'s centre, and the lower one's weight."""
    gy = (2 * ci + 1.0) / cell - 0.5
    a0 = int(np.floor(gy))
    fy = np.float32(gy - a0)
    if a0 < 0:
        a0 = 0
        fy = np.float32(0.0)
    a1 = a0 + 1 if a0 + 1 < gh else gh - 1
    return a0, a1, fy


@kernel_parallel
def planar_ratio_and_stats(y, u, v, grid, cell, ccol0, ccolf, y_off, y_scale, c_off, c_scale,
                           rv, gu, gv, bu, primary, balance, screen_min, ratio, guide, sums,
                           counts, gcols, scratch):
    """``ratio_and_screen_stats`` at chroma resolution, straight from 4:2:0 planes (even size).

    First ``gcols`` (gh, 4, chroma width): the grid interpolated along each grid row to every
    chroma column (``ccol0``/``ccolf``: each column's left cell and weight), so the bilinear
    screen estimate at a sample is one blend of two rows; ``planar_compose`` reuses it.
    Per chroma sample: its block's RGB (``_block_rgb``), ``ratio = d / d(local screen)`` and
    ``guide`` = BT.709 luma in 0..1. Screen statistics count each block as its 4 pixels: a 0/1
    weight per sample is summed per chroma column over a grid row's rows, then per cell.
    Each row's work is branch-free loops over contiguous rows, which LLVM vectorises.
    Threads split the rows by grid row (``cell`` is even): no races. ``scratch`` (gh, 5,
    chroma width) float32 holds each grid row's buffers: nothing is allocated per call.
    """
    hc, wc = ratio.shape
    gh, gw = grid.shape[0], grid.shape[1]
    half = cell // 2
    f32 = np.float32
    one = f32(1.0)
    zero = f32(0.0)
    for a in prange(gh):
        for c in range(4):
            for cj in range(wc):
                b0 = ccol0[cj]
                b1 = b0 + 1 if b0 + 1 < gw else gw - 1
                gcols[a, c, cj] = grid[a, b0, c] + ccolf[cj] * (grid[a, b1, c] - grid[a, b0, c])
    for gi in prange(gh):
        inv = scratch[gi, 0]
        acc = scratch[gi, 1:]
        acc[:] = 0.0
        for ci in range(gi * half, min((gi + 1) * half, hc)):
            a0, a1, fy = _row_weights(ci, cell, gh)
            d0 = gcols[a0, 3]
            d1 = gcols[a1, 3]
            for cj in range(wc):
                ds = d0[cj] + fy * (d1[cj] - d0[cj])
                inv[cj] = np.true_divide(one, ds) if ds > one else zero
            y0 = y[2 * ci]
            y1 = y[2 * ci + 1]
            ur = u[ci]
            vr = v[ci]
            qr = ratio[ci]
            gr = guide[ci]
            for cj in range(wc):
                r, g, b, _ = _block_rgb(y0, y1, ur, vr, cj, y_off, y_scale, c_off, c_scale,
                                        rv, gu, gv, bu)
                q = _difference(r, g, b, primary, balance) * inv[cj]
                qr[cj] = q
                gr[cj] = f32(0.2126 / 255.0) * r + f32(0.7152 / 255.0) * g + f32(0.0722 / 255.0) * b
                m = one if q > screen_min else zero
                acc[0, cj] += m * r
                acc[1, cj] += m * g
                acc[2, cj] += m * b
                acc[3, cj] += m
        _clear_stats_row(sums, counts, gi)
        for cg in range(gw):
            for cj in range(cg * half, min((cg + 1) * half, wc)):
                sums[gi, cg, 0] += acc[0, cj]
                sums[gi, cg, 1] += acc[1, cj]
                sums[gi, cg, 2] += acc[2, cj]
                counts[gi, cg] += acc[3, cj]
            for c in range(3):
                sums[gi, cg, c] *= 4.0
            counts[gi, cg] *= 4.0


@kernel_parallel
def planar_alpha(y, mean_a, mean_b, y_off, y_scale, hi, inv_width, clip_black, inv_clip, rows,
                 alpha):
    """Full-resolution alpha from the chroma-resolution guided-filter model (even width).

    ``q = A * luma + B`` with (A, B) = (``mean_a``, ``mean_b``) upsampled bilinearly with
    MPEG-2 siting (vertically between luma rows; horizontally on even columns, so an odd
    column takes the mean of its neighbours) and ``luma`` = the pixel's Y' in 0..1; then
    ``alpha = clip(((hi - q) * inv_width - clip_black) * inv_clip)`` as uint8, folded into one
    multiply-add and written without branches (two pixels a step: numba vectorises it).
    ``rows`` (``chroma_rows``): each chunk of rows' buffers for the model interpolated to its
    row, so nothing is allocated per call (an ``np.empty`` here also made
    loading the kernel import numba's array library: ~40 ms of start-up).
    """
    h, w = y.shape
    hc, wc = mean_a.shape
    s1 = np.float32(-inv_width * inv_clip * 255.0)
    s0 = np.float32((hi * inv_width - clip_black) * inv_clip * 255.0 + 0.5)
    gs = np.float32(y_scale / 255.0)
    go = np.float32(y_off)
    nchunk = rows.shape[0]
    for t in prange(nchunk):
        ra = rows[t, 0]
        rb = rows[t, 1]
        for i in range(t * h // nchunk, (t + 1) * h // nchunk):
            _alpha_row(y[i], mean_a, mean_b, i, hc, wc, s0, s1, gs, go, ra, rb, alpha[i])


@kernel
def _alpha_row(yr, mean_a, mean_b, i, hc, wc, s0, s1, gs, go, ra, rb, out):
    """One row of ``planar_alpha``: the model interpolated to row ``i`` into ``ra``/``rb``,
    then the row's alpha into ``out`` (``yr``: its luma)."""
    zero = np.float32(0.0)
    half = np.float32(0.5)
    sy = (i + 0.5) * 0.5 - 0.5
    r0 = int(np.floor(sy))
    fy = np.float32(sy - r0)
    if r0 < 0:
        r0 = 0
        fy = zero
    r1 = r0 + 1 if r0 + 1 < hc else hc - 1
    gy = np.float32(1.0) - fy
    for k in range(wc):
        ra[k] = gy * mean_a[r0, k] + fy * mean_a[r1, k]
        rb[k] = gy * mean_b[r0, k] + fy * mean_b[r1, k]
    ra[wc] = ra[wc - 1]
    rb[wc] = rb[wc - 1]
    for k in range(wc):
        a0 = ra[k]
        b0 = rb[k]
        a1 = half * (a0 + ra[k + 1])
        b1 = half * (b0 + rb[k + 1])
        g0 = min(max((np.float32(yr[2 * k]) - go) * gs, zero), np.float32(1.0))
        g1 = min(max((np.float32(yr[2 * k + 1]) - go) * gs, zero), np.float32(1.0))
        v0 = s0 + s1 * (a0 * g0 + b0)
        v1 = s0 + s1 * (a1 * g1 + b1)
        out[2 * k] = np.uint8(min(max(v0, zero), np.float32(255.0)))
        out[2 * k + 1] = np.uint8(min(max(v1, zero), np.float32(255.0)))


@kernel
def _visible_span(a0, a1, wc):
    """Blocks ``[lo, hi)`` of a 2-row strip of alpha (rows ``a0``/``a1``) from its first to
    its last with a visible pixel; ``(0, 0)`` when it has none."""
    lo = 0
    while lo < wc and (a0[2 * lo] | a0[2 * lo + 1] | a1[2 * lo] | a1[2 * lo + 1]) == 0:
        lo += 1
    if lo == wc:
        return 0, 0
    hi = wc
    while (a0[2 * hi - 2] | a0[2 * hi - 1] | a1[2 * hi - 2] | a1[2 * hi - 1]) == 0:
        hi -= 1
    return lo, hi


@kernel
def _block_colours(y0, y1, ur, vr, mar, mbr, gr, s0r, s0g, s0b, s1r, s1g, s1b, fy, yc, mc, kr,
                   kb, primary, limit_mode, spill, lum_p, dyb, ysb, rb, gb, bb):
    """Keyed colour of a run of blocks of one 2-row strip, as ``matte_and_despill`` does per
    pixel: ``dyb`` = the input matrix's luma moved to BT.709's, ``ysb`` = the local screen's
    luma (``s0*``/``s1*``: ``gcols`` rows, blended by ``fy``), ``rb``/``gb``/``bb`` = the
    colour minus its luma, after un-mixing from the screen (where the filtered ratio marks an
    edge; coverage ``c = 1 - ratio``) and despill with luminance restore. With ``spill`` 0
    both leave the colour as it is.

    Every argument is a run starting at the first block (callers slice), so indices are
    provably non-negative: Numba then drops its wraparound checks and the branch-free loop
    vectorises (with ``range(lo, hi)`` it does not).
    """
    f32 = np.float32
    y_off, y_scale, c_off, c_scale, rv, gu, gv, bu = yc
    m_hi, inv_width, clip_black, inv_clip = mc
    kg = f32(1.0) - kr - kb
    zero = f32(0.0)
    one = f32(1.0)
    top = f32(255.0)
    for cj in range(ur.shape[0]):
        r, g, b, ybar = _block_rgb(y0, y1, ur, vr, cj, y_off, y_scale, c_off, c_scale,
                                   rv, gu, gv, bu)
        dyb[cj] = kr * r + kg * g + kb * b - ybar
        sr = s0r[cj] + fy * (s1r[cj] - s0r[cj])
        sg = s0g[cj] + fy * (s1g[cj] - s0g[cj])
        sb = s0b[cj] + fy * (s1b[cj] - s0b[cj])
        ysb[cj] = kr * sr + kg * sg + kb * sb
        q = mar[cj] * gr[cj] + mbr[cj]
        ab = ((m_hi - q) * inv_width - clip_black) * inv_clip
        k = min(q, one) * spill
        inv = np.true_divide(one, max(one - k, f32(0.001)))
        part = (q > zero) & (ab > zero) & (ab < one)
        r = min(max((r - k * sr) * inv, zero), top) if part else r
        g = min(max((g - k * sg) * inv, zero), top) if part else g
        b = min(max((b - k * sb) * inv, zero), top) if part else b
        r, g, b = _despill(r, g, b, primary, limit_mode, spill, lum_p)
        yf = kr * r + kg * g + kb * b
        rb[cj] = r - yf
        gb[cj] = g - yf
        bb[cj] = b - yf


@kernel
def _pixel_luma(yv, p, dy, ys, y_off, y_scale, p_off, p_scale, spill):
    """A pixel's keyed luma (0..255): its Y' with its block's ``dy``, un-mixed from the screen's
    luma ``ys`` where its own ``pre`` alpha ``p`` marks an edge (its ratio recovered from it).
    Branch-free with ``np.true_divide`` (Python's ``/`` checks for zero, which stops the
    calling loops vectorising: 15x slower)."""
    f32 = np.float32
    one = f32(1.0)
    yy = (f32(yv) - y_off) * y_scale + dy
    qp = p_off - f32(p) * p_scale
    k = min(qp, one) * spill
    fix = (p != 0) & (p != 255) & (qp > f32(0.0)) & (k < f32(0.999))
    k = k if fix else f32(0.0)
    yy = np.true_divide(yy - k * ys, one - k)   # IEEE quotient, no ZeroDivisionError check
    return min(max(yy, f32(0.0)), f32(255.0))


@kernel
def _u8(x):
    """Round a float32 to uint8, clamped (float32 throughout, unlike ``_clamp_u8``)."""
    return np.uint8(min(max(x, np.float32(0.0)), np.float32(255.0)) + np.float32(0.5))


@kernel
def _keyed_luma_row(yr, ar, pr, dyb, ysb, yl, pl, spill, first, seen, yo):
    """Output luma (BT.709 limited range) of a run of blocks of one row: black-level 16 under
    alpha 0. ``seen`` gets (``first`` row of the strip) or adds each block's visible pixels.
    Runs start at the first block (see ``_block_colours``); two pixels a step."""
    f32 = np.float32
    y_off, y_scale = yl
    p_off, p_scale = pl
    luma_k = f32(219.0 / 255.0)
    one = f32(1.0)
    zero = f32(0.0)
    keep = zero if first else one
    for cj in range(dyb.shape[0]):
        ja = 2 * cj
        jb = ja + 1
        ya = _pixel_luma(yr[ja], pr[ja], dyb[cj], ysb[cj], y_off, y_scale, p_off, p_scale, spill)
        yb = _pixel_luma(yr[jb], pr[jb], dyb[cj], ysb[cj], y_off, y_scale, p_off, p_scale, spill)
        va = ar[ja] != 0
        vb = ar[jb] != 0
        yo[ja] = np.uint8(f32(16.5) + luma_k * ya) if va else np.uint8(16)
        yo[jb] = np.uint8(f32(16.5) + luma_k * yb) if vb else np.uint8(16)
        seen[cj] = keep * seen[cj] + (one if va else zero) + (one if vb else zero)


@kernel
def _flattened_luma_row(yr, ar, pr, dyb, ysb, yl, pl, spill, first, by, seen, yo):
    """``_keyed_luma_row`` composited over the background row ``by``; ``seen`` sums alpha."""
    f32 = np.float32
    y_off, y_scale = yl
    p_off, p_scale = pl
    luma_k = f32(219.0 / 255.0)
    one = f32(1.0)
    keep = f32(0.0) if first else one
    for cj in range(dyb.shape[0]):
        ja = 2 * cj
        jb = ja + 1
        ya = _pixel_luma(yr[ja], pr[ja], dyb[cj], ysb[cj], y_off, y_scale, p_off, p_scale, spill)
        yb = _pixel_luma(yr[jb], pr[jb], dyb[cj], ysb[cj], y_off, y_scale, p_off, p_scale, spill)
        fa = f32(ar[ja]) * f32(1.0 / 255.0)
        fb = f32(ar[jb]) * f32(1.0 / 255.0)
        yo[ja] = np.uint8(fa * (f32(16.0) + luma_k * ya) + (one - fa) * f32(by[ja]) + f32(0.5))
        yo[jb] = np.uint8(fb * (f32(16.0) + luma_k * yb) + (one - fb) * f32(by[jb]) + f32(0.5))
        seen[cj] = keep * seen[cj] + fa + fb


@kernel
def _rgba32(y, r, g, b, a):
    """One straight-alpha RGBA pixel packed in a little-endian uint32 (R in the low byte); zero
    under alpha 0."""
    u32 = np.uint32
    px = (u32(_u8(y + r)) | (u32(_u8(y + g)) << u32(8)) | (u32(_u8(y + b)) << u32(16))
          | (u32(a) << u32(24)))
    return px if a != 0 else u32(0)


@kernel
def _keyed_rgba_row(yr, ar, pr, dyb, ysb, rb, gb, bb, yl, pl, spill, out):
    """Straight-alpha RGBA of a run of blocks of one row, into ``out``: the row's pixels as
    uint32 (one store per pixel vectorises; four byte stores do not, 3x slower). Each pixel's
    own luma with its block's colour difference; zero under alpha 0. Two pixels a step."""
    y_off, y_scale = yl
    p_off, p_scale = pl
    for cj in range(dyb.shape[0]):
        ja = 2 * cj
        jb = ja + 1
        ya = _pixel_luma(yr[ja], pr[ja], dyb[cj], ysb[cj], y_off, y_scale, p_off, p_scale, spill)
        yb = _pixel_luma(yr[jb], pr[jb], dyb[cj], ysb[cj], y_off, y_scale, p_off, p_scale, spill)
        out[ja] = _rgba32(ya, rb[cj], gb[cj], bb[cj], ar[ja])
        out[jb] = _rgba32(yb, rb[cj], gb[cj], bb[cj], ar[jb])


@kernel
def _keyed_chroma_row(seen, rb, bb, kr, kb, uo, vo):
    """Output Cb/Cr of a run of blocks (BT.709 limited): the block's colour scaled by its
    visible share (as averaging its zeroed RGB would)."""
    f32 = np.float32
    cb_k = f32(224.0 / 255.0) / (f32(2.0) * (f32(1.0) - kb))
    cr_k = f32(224.0 / 255.0) / (f32(2.0) * (f32(1.0) - kr))
    for cj in range(seen.shape[0]):
        share = seen[cj] * f32(0.25)
        uo[cj] = _u8(f32(128.0) + share * bb[cj] * cb_k)
        vo[cj] = _u8(f32(128.0) + share * rb[cj] * cr_k)


@kernel
def _flattened_chroma_row(seen, rb, bb, kr, kb, bu, bv, uo, vo):
    """``_keyed_chroma_row`` blended over the background's Cb/Cr by the block's mean alpha."""
    f32 = np.float32
    cb_k = f32(224.0 / 255.0) / (f32(2.0) * (f32(1.0) - kb))
    cr_k = f32(224.0 / 255.0) / (f32(2.0) * (f32(1.0) - kr))
    one = f32(1.0)
    for cj in range(seen.shape[0]):
        share = seen[cj] * f32(0.25)
        uo[cj] = _u8(share * (f32(128.0) + bb[cj] * cb_k) + (one - share) * f32(bu[cj]))
        vo[cj] = _u8(share * (f32(128.0) + rb[cj] * cr_k) + (one - share) * f32(bv[cj]))


@kernel
def _copy(src, dst):
    """``dst[:] = src`` for two 1-D runs of one length, indexed from 0 (a plain copy loop)."""
    for j in range(dst.shape[0]):
        dst[j] = src[j]


@kernel
def _background_row(lo, hi, flatten, i0, ci, bg_y, bg_u, bg_v, y_out, u_out, v_out):
    """Blocks outside ``lo..hi`` of a 2-row strip of the output planes, wholly transparent:
    black, or the background's samples (no colour work). Fills are slice assignments of a
    scalar; copies are ``_copy`` loops (an array-to-array slice assignment carries a shape
    check whose error message makes loading the kernel import numba's array and string
    libraries: ~40 ms of start-up)."""
    i1 = i0 + 1
    if flatten:
        for i in range(i0, i1 + 1):
            _copy(bg_y[i, :2 * lo], y_out[i, :2 * lo])
            _copy(bg_y[i, 2 * hi:], y_out[i, 2 * hi:])
        _copy(bg_u[ci, :lo], u_out[ci, :lo])
        _copy(bg_u[ci, hi:], u_out[ci, hi:])
        _copy(bg_v[ci, :lo], v_out[ci, :lo])
        _copy(bg_v[ci, hi:], v_out[ci, hi:])
    else:
        y_out[i0:i1 + 1, :2 * lo] = 16
        y_out[i0:i1 + 1, 2 * hi:] = 16
        u_out[ci, :lo] = 128
        u_out[ci, hi:] = 128
        v_out[ci, :lo] = 128
        v_out[ci, hi:] = 128


@kernel
def _clear_rgba_row(lo, hi, x0, x1, out):
    """Pixels outside blocks ``lo..hi`` of a packed RGBA row, wholly transparent: zero, where
    the row is not zero already (columns ``x0..x1``: outside them it is)."""
    out[x0:max(x0, min(2 * lo, x1))] = 0
    out[max(2 * hi, x0):x1] = 0


@kernel_parallel
def planar_compose(y, u, v, pre, alpha, mean_a, mean_b, guide, gcols, cell, y_off, y_scale,
                   c_off, c_scale, rv, gu, gv, bu, kr, kb, hi, inv_width, clip_black, inv_clip,
                   primary, limit_mode, spill, lum_p, flatten, to_rgba, bg_y, bg_u, bg_v,
                   scratch, y_out, u_out, v_out, rgba, stale, spans):
    """The output's 4:2:0 planes (BT.709 limited range) from the matte (even size); or, with
    ``to_rgba``, straight-alpha RGBA for the effects into ``rgba``, (H, W) uint32: an
    (H, W, 4) uint8 picture viewed as packed pixels (the ``*_out`` planes unused).

    ``gcols`` is this frame's screen grid interpolated to chroma columns, as
    ``planar_ratio_and_stats`` left it. Per 2-row strip, only the run of blocks from the first
    to the last with a visible pixel gets colour work (``_visible_span``; the rest of a screen
    is written as background); over that run, vectorised row loops work out each block's
    colour once (``_block_colours``), then each pixel's luma and the block's chroma. Luma
    stays per pixel: ``Y' + dY`` (``dY`` moves the input matrix's luma to BT.709's; 0 when
    they agree), un-mixed where the pixel's own ``pre`` alpha (the matte before shrink/feather,
    from which its ratio is recovered) marks an edge. Under ``alpha`` 0 colour is black
    (``flatten`` = 0; the alpha plane is ``alpha`` itself), or pixels are composited over the
    background planes (``flatten`` = 1; chroma with the block's mean alpha). RGBA pixels get
    their own luma with their block's colour difference (nearest chroma: the encoder averages
    the same 2x2 blocks again). ``scratch`` (chunks, 6, chroma width) float32: the row
    buffers of each chunk of strips (the strips are split into that many), so nothing is
    allocated per call.

    With ``to_rgba``, ``rgba`` is known to be zero outside the box ``stale`` = (y0, y1, x0,
    x1) (what it held before), so only that part of the transparent pixels is cleared. Either
    way ``spans`` (chroma height, 2) int32 gets each strip's run of blocks with a visible pixel
    ``[lo, hi)`` (``lo == hi``: none), from which the caller boxes what is not transparent.
    """
    h, w = y.shape
    hc, wc = h // 2, w // 2
    sy0, sy1, sx0, sx1 = stale
    gh = gcols.shape[0]
    f32 = np.float32
    yc = (f32(y_off), f32(y_scale), f32(c_off), f32(c_scale), f32(rv), f32(gu), f32(gv), f32(bu))
    mc = (f32(hi), f32(inv_width), f32(clip_black), f32(inv_clip))
    yl = (f32(y_off), f32(y_scale))
    pl = (f32(hi - clip_black / inv_width), f32(1.0 / 255.0 / inv_clip / inv_width))
    kr = f32(kr)
    kb = f32(kb)
    spill = f32(spill)
    lum_p = f32(lum_p)
    nchunk = scratch.shape[0]
    for t in prange(nchunk):
        dyb, ysb, rb, gb, bb, seen = scratch[t]
        for ci in range(t * hc // nchunk, (t + 1) * hc // nchunk):
            i0 = 2 * ci
            i1 = i0 + 1
            lo, hi_ = _visible_span(alpha[i0], alpha[i1], wc)
            spans[ci, 0] = lo
            spans[ci, 1] = hi_
            if to_rgba:
                if sy0 <= i0 < sy1:
                    _clear_rgba_row(lo, hi_, sx0, sx1, rgba[i0])
                if sy0 <= i1 < sy1:
                    _clear_rgba_row(lo, hi_, sx0, sx1, rgba[i1])
            else:
                _background_row(lo, hi_, flatten, i0, ci, bg_y, bg_u, bg_v, y_out, u_out, v_out)
            if lo == hi_:
                continue
            n = hi_ - lo
            j0 = 2 * lo
            j1 = 2 * hi_
            a0, a1, fy = _row_weights(ci, cell, gh)
            _block_colours(y[i0, j0:j1], y[i1, j0:j1], u[ci, lo:hi_], v[ci, lo:hi_],
                           mean_a[ci, lo:hi_], mean_b[ci, lo:hi_], guide[ci, lo:hi_],
                           gcols[a0, 0, lo:hi_], gcols[a0, 1, lo:hi_], gcols[a0, 2, lo:hi_],
                           gcols[a1, 0, lo:hi_], gcols[a1, 1, lo:hi_], gcols[a1, 2, lo:hi_],
                           fy, yc, mc, kr, kb, primary, limit_mode, spill, lum_p,
                           dyb[:n], ysb[:n], rb[:n], gb[:n], bb[:n])
            for i in range(i0, i0 + 2):
                yr = y[i, j0:j1]
                ar = alpha[i, j0:j1]
                pr = pre[i, j0:j1]
                if to_rgba:
                    _keyed_rgba_row(yr, ar, pr, dyb[:n], ysb[:n], rb[:n], gb[:n], bb[:n], yl,
                                    pl, spill, rgba[i, j0:j1])
                elif flatten:
                    _flattened_luma_row(yr, ar, pr, dyb[:n], ysb[:n], yl, pl, spill, i == i0,
                                        bg_y[i, j0:j1], seen[:n], y_out[i, j0:j1])
                else:
                    _keyed_luma_row(yr, ar, pr, dyb[:n], ysb[:n], yl, pl, spill, i == i0,
                                    seen[:n], y_out[i, j0:j1])
            if to_rgba:
                continue
            if flatten:
                _flattened_chroma_row(seen[:n], rb[:n], bb[:n], kr, kb, bg_u[ci, lo:hi_],
                                      bg_v[ci, lo:hi_], u_out[ci, lo:hi_], v_out[ci, lo:hi_])
            else:
                _keyed_chroma_row(seen[:n], rb[:n], bb[:n], kr, kb, u_out[ci, lo:hi_],
                                  v_out[ci, lo:hi_])
