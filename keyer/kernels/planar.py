"""The planar path's kernels: the chroma key from 8-bit 4:2:0 Y'CbCr planes, no RGB frame.

In Y'CbCr every RGB channel is ``Y + linear(Cb, Cr)``, so the colour difference (and with it
the matte's ratio) depends on chroma alone: it is computed once per chroma sample, a quarter
of the pixels. Luma only guides the matte to full resolution, and despill with luminance
restore leaves luma as it was, so opaque pixels keep their decoded Y' untouched.

``planar_ratio_and_stats`` gives each chroma sample its ratio and gathers the screen statistics;
after the guided filter (``keyer.kernels.guided``), ``planar_alpha`` makes full-resolution
alpha and ``planar_compose`` the output: the encoder's 4:2:0 planes (limited range, alone or
over a background), or straight-alpha RGBA for the effects. Per 2x2 block they do what the
RGBA path's kernels (``keyer.kernels.rgba``) do per pixel.

Colour constants come in one tuple (``colour``), made by ``keyer.colour``: first the input's
eight reading constants ``(y_off, y_scale, c_off, c_scale, rv, gu, gv, bu)`` float32
(``YCbCr.coefficients``), then what the kernel needs besides (see each).
"""
from __future__ import annotations

import numpy as np

from keyer._jit import kernel, kernel_parallel, prange

# The model's ratio below which a sample was filled by the core matte (keyer.kernels.core.CORE_Q;
# written out here, as Numba's cache watches only this file): opaque, colour kept.
CORE_Q = np.float32(-4.0)

# What ``planar_compose`` writes (its ``mode``)
TO_PLANES = 0          # the output's Y'CbCr planes; the alpha plane is the matte itself
OVER_BACKGROUND = 1    # the output's Y'CbCr planes composited over a background's
TO_RGBA = 2            # straight-alpha RGBA, as packed pixels


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
    """Screen primary minus a balance-weighted mix of the other two (max/min) channels. Of a
    colour minus the local screen (each channel's excess over it) this is linear along any mix
    of a foreground with that screen (``keyer.keying``)."""
    p, o1, o2 = _split(r, g, b, primary)
    hi = o1 if o1 > o2 else o2
    lo = o2 if o1 > o2 else o1
    return p - (balance * hi + (np.float32(1.0) - balance) * lo)


@kernel
def _tint_weights(primary):
    """The tint's weights on (R, G, B): the first other channel minus the second (as
    ``_split`` orders them). A colour's tint against the local screen ``S`` with ratio ``q``
    is ``(w . C - q * w . S) / d_S``: its two other channels' excess difference plus the
    screen's times ``1 - q``, so it is 0 for every neutral colour (``q`` = 0, ``w . (1, 1, 1)``
    = 0) and, like ``1 - q``, scales with coverage along a mix with the screen
    (``keyer.kernels.guided.foreground_scale``)."""
    one = np.float32(1.0)
    zero = np.float32(0.0)
    if primary == 1:
        return one, zero, -one
    if primary == 2:
        return one, -one, zero
    return zero, one, -one


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


@kernel
def _clear_stats_row(sums, counts, gi):
    """Zero one grid row of the screen statistics (each thread owns its grid rows)."""
    for c in range(counts.shape[1]):
        sums[gi, c, 0] = 0.0
        sums[gi, c, 1] = 0.0
        sums[gi, c, 2] = 0.0
        counts[gi, c] = 0.0


@kernel
def _block_rgb(y0, y1, ur, vr, cj, yc):
    """(R, G, B, normalised mean Y') of 2x2 block ``cj`` of luma rows ``y0``/``y1`` with its
    chroma sample in rows ``ur``/``vr``, read with ``yc`` (the eight reading constants); RGB
    clamped to 0..255, all float32 (so the loops calling this vectorise)."""
    f32 = np.float32
    y_off, y_scale, c_off, c_scale, rv, gu, gv, bu = yc
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
def planar_ratio_and_stats(planes, grid, cell, cols, colour, key, ratio, tint, guide, stats,
                           gcols, scratch):
    """``rgba.ratio_and_screen_stats`` at chroma resolution, straight from 4:2:0 planes
    ``planes`` = (Y', Cb, Cr) of an even size.

    ``colour`` = the eight reading constants, then ``(Kr, Kg, Kb)`` of the guide's luma;
    ``key`` = (primary, balance, screen_min, purity_min, purity_max) and
    ``stats`` = (sums, counts), as there. First
    ``gcols`` (gh, 4, chroma width): the grid (cells of ``cell`` px) interpolated along each
    grid row to every chroma column (``cols`` = (col0, colf): each column's left cell and
    weight), so the bilinear screen estimate at a sample is one blend of two rows;
    ``planar_compose`` reuses it. Per chroma sample: its block's RGB (``_block_rgb``), the
    ratio and its ``tint`` (as there, the local screen's R, G, B and ``d`` blended between two
    ``gcols`` rows) and ``guide`` = that luma in 0..1. Screen statistics count
    each block as its 4 pixels: a 0/1 weight per sample is summed per chroma column over a grid
    row's rows, then per cell. Each row's work is branch-free loops over contiguous rows, which
    LLVM vectorises. Threads split the rows by grid row (``cell`` is even): no races.
    ``scratch`` (gh, 4, chroma width) float32 holds each grid row's sums: nothing is
    allocated per call.
    """
    y, u, v = planes
    ccol0, ccolf = cols
    y_off, y_scale, c_off, c_scale, rv, gu, gv, bu, lr, lg, lb = colour
    yc = (y_off, y_scale, c_off, c_scale, rv, gu, gv, bu)
    primary, balance, screen_min, pure_min, pure_max = key
    sums, counts = stats
    hc, wc = ratio.shape
    gh, gw = grid.shape[0], grid.shape[1]
    half = cell // 2
    f32 = np.float32
    one = f32(1.0)
    zero = f32(0.0)
    wr = f32(lr / 255.0)
    wg = f32(lg / 255.0)
    wb = f32(lb / 255.0)
    tw_r, tw_g, tw_b = _tint_weights(primary)
    for a in prange(gh):
        for c in range(4):
            for cj in range(wc):
                b0 = ccol0[cj]
                b1 = b0 + 1 if b0 + 1 < gw else gw - 1
                gcols[a, c, cj] = grid[a, b0, c] + ccolf[cj] * (grid[a, b1, c] - grid[a, b0, c])
    for gi in prange(gh):
        acc = scratch[gi]
        acc[:] = 0.0
        for ci in range(gi * half, min((gi + 1) * half, hc)):
            a0, a1, fy = _row_weights(ci, cell, gh)
            r0, g0, b0, d0 = gcols[a0, 0], gcols[a0, 1], gcols[a0, 2], gcols[a0, 3]
            r1, g1, b1, d1 = gcols[a1, 0], gcols[a1, 1], gcols[a1, 2], gcols[a1, 3]
            y0 = y[2 * ci]
            y1 = y[2 * ci + 1]
            ur = u[ci]
            vr = v[ci]
            qr = ratio[ci]
            tr = tint[ci]
            gr = guide[ci]
            for cj in range(wc):
                sr = r0[cj] + fy * (r1[cj] - r0[cj])
                sg = g0[cj] + fy * (g1[cj] - g0[cj])
                sb = b0[cj] + fy * (b1[cj] - b0[cj])
                ds = d0[cj] + fy * (d1[cj] - d0[cj])
                ok = ds > one
                inv = np.true_divide(one, ds) if ok else zero
                r, g, b, _ = _block_rgb(y0, y1, ur, vr, cj, yc)
                d = _difference(r - sr, g - sg, b - sb, primary, balance)
                q = (one if ok else zero) + d * inv
                qr[cj] = q
                tr[cj] = (tw_r * (r - q * sr) + tw_g * (g - q * sg) + tw_b * (b - q * sb)) * inv
                gr[cj] = wr * r + wg * g + wb * b
                own = _difference(r, g, b, primary, balance)
                p, _, _ = _split(r, g, b, primary)
                m = one if ((q > screen_min) & (own > pure_min * p)
                            & (own < pure_max * p)) else zero
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
def planar_alpha(y, model, colour, matte, rows, alpha):
    """Full-resolution alpha from the chroma-resolution guided-filter model (even width).

    ``q = A * luma + B`` with (A, B) = ``model`` (slope, offset) upsampled bilinearly with
    MPEG-2 siting (vertically between luma rows; horizontally on even columns, so an odd
    column takes the mean of its neighbours) and ``luma`` = the pixel's Y' (of ``y``, read with
    ``colour``, the eight reading constants) in 0..1; then, with ``matte`` = (hi, inv_width,
    clip_black, inv_clip), ``alpha = clip(((hi - q) * inv_width - clip_black) * inv_clip)`` as
    uint8, folded into one multiply-add and written without branches (two pixels a step: numba
    vectorises it). ``rows`` (``keyer.kernels.chroma_rows``): each chunk of rows' buffers for
    the model interpolated to its row, so nothing is allocated per call (an ``np.empty`` here
    also made loading the kernel import numba's array library: ~40 ms of start-up).
    """
    slope, offset = model
    y_off, y_scale, _, _, _, _, _, _ = colour
    hi, inv_width, clip_black, inv_clip = matte
    h, w = y.shape
    s1 = np.float32(-inv_width * inv_clip * 255.0)
    s0 = np.float32((hi * inv_width - clip_black) * inv_clip * 255.0 + 0.5)
    gs = np.float32(y_scale / 255.0)
    go = np.float32(y_off)
    nchunk = rows.shape[0]
    for t in prange(nchunk):
        ramp = (s0, s1, gs, go)
        buf = (rows[t, 0], rows[t, 1])
        for i in range(t * h // nchunk, (t + 1) * h // nchunk):
            _alpha_row(y[i], model, i, ramp, buf, alpha[i])


@kernel
def _alpha_row(yr, model, i, ramp, buf, out):
    """One row of ``planar_alpha``: the model interpolated to row ``i`` into ``buf`` (two
    rows of chroma width + 1), then the row's alpha into ``out`` (``yr``: its luma;
    ``ramp`` = (s0, s1, gs, go): ``alpha = s0 + s1 * q`` with luma ``(Y' - go) * gs``)."""
    slope, offset = model
    ra, rb = buf
    s0, s1, gs, go = ramp
    hc, wc = slope.shape
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
        ra[k] = gy * slope[r0, k] + fy * slope[r1, k]
        rb[k] = gy * offset[r0, k] + fy * offset[r1, k]
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
def _block_colours(strip, fit, screen, fy, colour, matte, despill, blocks):
    """Keyed colour of a run of blocks of one 2-row strip, as ``rgba.matte_and_despill`` does
    per pixel, into ``blocks`` = (dyb, ysb, rb, gb, bb): ``dyb`` = the input matrix's luma
    moved to the output's, ``ysb`` = the local screen's luma, ``rb``/``gb``/``bb`` = the colour
    minus its luma, after un-mixing from the screen (where the filtered ratio marks an edge;
    coverage ``c = 1 - ratio``) and despill with luminance restore. With ``spill`` 0 both leave
    the colour as it is.

    ``strip`` = the strip's luma rows and chroma samples (y0, y1, u, v); ``fit`` = the ratio's
    model and guide (slope, offset, guide); ``screen`` = the screen's R, G, B along the grid
    rows above and below (``gcols`` rows), blended by ``fy``; ``colour`` = the eight reading
    constants then the output's (Kr, Kb), float32; ``matte`` = (hi, inv_width, clip_black,
    inv_clip) and ``despill`` = (primary, limit_mode, spill, lum_p), float32.
    Every array is a run starting at the first block (callers slice), so indices are
    provably non-negative: Numba then drops its wraparound checks and the branch-free loop
    vectorises (with ``range(lo, hi)`` it does not).
    """
    f32 = np.float32
    y0, y1, ur, vr = strip
    mar, mbr, gr = fit
    s0r, s0g, s0b, s1r, s1g, s1b = screen
    y_off, y_scale, c_off, c_scale, rv, gu, gv, bu, kr, kb = colour
    yc = (y_off, y_scale, c_off, c_scale, rv, gu, gv, bu)
    m_hi, inv_width, clip_black, inv_clip = matte
    primary, limit_mode, spill, lum_p = despill
    dyb, ysb, rb, gb, bb = blocks
    kg = f32(1.0) - kr - kb
    zero = f32(0.0)
    one = f32(1.0)
    top = f32(255.0)
    for cj in range(ur.shape[0]):
        r, g, b, ybar = _block_rgb(y0, y1, ur, vr, cj, yc)
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
        r2, g2, b2 = _despill(r, g, b, primary, limit_mode, spill, lum_p)
        keep = q < CORE_Q   # a core-matte sample: its colour stays as it is
        r = r if keep else r2
        g = g if keep else g2
        b = b if keep else b2
        yf = kr * r + kg * g + kb * b
        rb[cj] = r - yf
        gb[cj] = g - yf
        bb[cj] = b - yf


@kernel
def _pixel_luma(yv, p, dy, ys, pixel):
    """A pixel's keyed luma (0..255): its Y' with its block's ``dy``, un-mixed from the screen's
    luma ``ys`` where its own ``pre`` alpha ``p`` marks an edge (its ratio recovered from it).
    ``pixel`` = (y_off, y_scale, p_off, p_scale, spill), float32: Y' read as
    ``(Y' - y_off) * y_scale``, the ratio as ``p_off - p * p_scale``.
    Branch-free with ``np.true_divide`` (Python's ``/`` checks for zero, which stops the
    calling loops vectorising: 15x slower)."""
    f32 = np.float32
    y_off, y_scale, p_off, p_scale, spill = pixel
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
    """Round a float32 to uint8, clamped (float32 throughout, unlike ``rgba._clamp_u8``)."""
    return np.uint8(min(max(x, np.float32(0.0)), np.float32(255.0)) + np.float32(0.5))


@kernel
def _keyed_luma_row(row, blocks, pixel, luma, first, seen, yo):
    """Output luma of a run of blocks of one row: black under alpha 0. ``row`` = the row's
    (Y', alpha, pre alpha); ``blocks`` as ``_block_colours`` left them; ``luma`` = (black,
    span / 255) of the output's range, float32. ``seen`` gets (``first`` row of the strip) or
    adds each block's visible pixels. Runs start at the first block (see ``_block_colours``);
    two pixels a step."""
    f32 = np.float32
    yr, ar, pr = row
    dyb, ysb, _, _, _ = blocks
    black, luma_k = luma
    rounded = black + f32(0.5)
    black_code = np.uint8(black)
    one = f32(1.0)
    zero = f32(0.0)
    keep = zero if first else one
    for cj in range(dyb.shape[0]):
        ja = 2 * cj
        jb = ja + 1
        ya = _pixel_luma(yr[ja], pr[ja], dyb[cj], ysb[cj], pixel)
        yb = _pixel_luma(yr[jb], pr[jb], dyb[cj], ysb[cj], pixel)
        va = ar[ja] != 0
        vb = ar[jb] != 0
        yo[ja] = np.uint8(rounded + luma_k * ya) if va else black_code
        yo[jb] = np.uint8(rounded + luma_k * yb) if vb else black_code
        seen[cj] = keep * seen[cj] + (one if va else zero) + (one if vb else zero)


@kernel
def _flattened_luma_row(row, blocks, pixel, luma, first, by, seen, yo):
    """``_keyed_luma_row`` composited over the background row ``by``; ``seen`` sums alpha."""
    f32 = np.float32
    yr, ar, pr = row
    dyb, ysb, _, _, _ = blocks
    black, luma_k = luma
    one = f32(1.0)
    keep = f32(0.0) if first else one
    for cj in range(dyb.shape[0]):
        ja = 2 * cj
        jb = ja + 1
        ya = _pixel_luma(yr[ja], pr[ja], dyb[cj], ysb[cj], pixel)
        yb = _pixel_luma(yr[jb], pr[jb], dyb[cj], ysb[cj], pixel)
        fa = f32(ar[ja]) * f32(1.0 / 255.0)
        fb = f32(ar[jb]) * f32(1.0 / 255.0)
        yo[ja] = np.uint8(fa * (black + luma_k * ya) + (one - fa) * f32(by[ja]) + f32(0.5))
        yo[jb] = np.uint8(fb * (black + luma_k * yb) + (one - fb) * f32(by[jb]) + f32(0.5))
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
def _keyed_rgba_row(row, blocks, pixel, out):
    """Straight-alpha RGBA of a run of blocks of one row (``row``, ``blocks`` and ``pixel`` as
    for ``_keyed_luma_row``), into ``out``: the row's pixels as uint32 (one store per pixel
    vectorises; four byte stores do not, 3x slower). Each pixel's own luma with its block's
    colour difference; zero under alpha 0. Two pixels a step."""
    yr, ar, pr = row
    dyb, ysb, rb, gb, bb = blocks
    for cj in range(dyb.shape[0]):
        ja = 2 * cj
        jb = ja + 1
        ya = _pixel_luma(yr[ja], pr[ja], dyb[cj], ysb[cj], pixel)
        yb = _pixel_luma(yr[jb], pr[jb], dyb[cj], ysb[cj], pixel)
        out[ja] = _rgba32(ya, rb[cj], gb[cj], bb[cj], ar[ja])
        out[jb] = _rgba32(yb, rb[cj], gb[cj], bb[cj], ar[jb])


@kernel
def _keyed_chroma_row(seen, blocks, chroma, uo, vo):
    """Output Cb/Cr of a run of blocks: the block's colour scaled by its visible share (as
    averaging its zeroed RGB would). ``chroma`` = (zero, Cb scale, Cr scale) of the output,
    float32: ``C = zero + (B - Y) * Cb scale`` (and R for Cr)."""
    f32 = np.float32
    _, _, rb, _, bb = blocks
    c_zero, cb_k, cr_k = chroma
    for cj in range(seen.shape[0]):
        share = seen[cj] * f32(0.25)
        uo[cj] = _u8(c_zero + share * bb[cj] * cb_k)
        vo[cj] = _u8(c_zero + share * rb[cj] * cr_k)


@kernel
def _flattened_chroma_row(seen, blocks, chroma, bu, bv, uo, vo):
    """``_keyed_chroma_row`` blended over the background's Cb/Cr by the block's mean alpha."""
    f32 = np.float32
    _, _, rb, _, bb = blocks
    c_zero, cb_k, cr_k = chroma
    one = f32(1.0)
    for cj in range(seen.shape[0]):
        share = seen[cj] * f32(0.25)
        uo[cj] = _u8(share * (c_zero + bb[cj] * cb_k) + (one - share) * f32(bu[cj]))
        vo[cj] = _u8(share * (c_zero + rb[cj] * cr_k) + (one - share) * f32(bv[cj]))


@kernel
def _copy(src, dst):
    """``dst[:] = src`` for two 1-D runs of one length, indexed from 0 (a plain copy loop)."""
    for j in range(dst.shape[0]):
        dst[j] = src[j]


@kernel
def _background_row(lo, hi, flatten, i0, ci, fill, background, out):
    """Blocks outside ``lo..hi`` of a 2-row strip of the output planes ``out`` (Y', Cb, Cr),
    wholly transparent: ``fill`` = (Y', C) codes of black, or the ``background`` planes'
    samples (no colour work). Fills are slice assignments of a scalar; copies are ``_copy``
    loops (an array-to-array slice assignment carries a shape check whose error message makes
    loading the kernel import numba's array and string libraries: ~40 ms of start-up)."""
    bg_y, bg_u, bg_v = background
    y_out, u_out, v_out = out
    y_fill, c_fill = fill
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
        y_out[i0:i1 + 1, :2 * lo] = y_fill
        y_out[i0:i1 + 1, 2 * hi:] = y_fill
        u_out[ci, :lo] = c_fill
        u_out[ci, hi:] = c_fill
        v_out[ci, :lo] = c_fill
        v_out[ci, hi:] = c_fill


@kernel
def _clear_rgba_row(lo, hi, x0, x1, out):
    """Pixels outside blocks ``lo..hi`` of a packed RGBA row, wholly transparent: zero, where
    the row is not zero already (columns ``x0..x1``: outside them it is)."""
    out[x0:max(x0, min(2 * lo, x1))] = 0
    out[max(2 * hi, x0):x1] = 0


@kernel_parallel
def planar_compose(planes, mattes, model, gcols, cell, colour, matte, despill, mode,
                   background, scratch, out, rgba, stale, spans):
    """The output's 4:2:0 planes (limited range) from the matte (even size); or, with ``mode``
    ``TO_RGBA``, straight-alpha RGBA for the effects into ``rgba``, (H, W) uint32: an
    (H, W, 4) uint8 picture viewed as packed pixels (the ``out`` planes unused).

    ``planes`` = the input's (Y', Cb, Cr); ``mattes`` = (pre, alpha): the matte before
    shrink/feather and after; ``model`` = the ratio's guided-filter model and its guide
    (slope, offset, guide) at chroma resolution; ``gcols`` is this frame's screen grid (cells of
    ``cell`` px) interpolated to chroma columns, as ``planar_ratio_and_stats`` left it.
    ``colour`` = the eight reading constants (float32), then the output's matrix (Kr, Kb) and
    range (Y' black, Y' span, C zero, C span): ``Y = black + span * Y'``, ``C = zero + span * C'``
    (``keyer.colour.OUTPUT``). ``matte`` = (hi, inv_width, clip_black, inv_clip) and
    ``despill`` = (primary, limit_mode, spill, lum_p) as ``rgba.matte_and_despill`` takes them.

    Per 2-row strip, only the run of blocks from the first to the last with a visible pixel
    gets colour work (``_visible_span``; the rest of a screen is written as background); over
    that run, vectorised row loops work out each block's colour once (``_block_colours``), then
    each pixel's luma and the block's chroma. Luma stays per pixel: ``Y' + dY`` (``dY`` moves
    the input matrix's luma to the output's; 0 when they agree), un-mixed where the pixel's own
    ``pre`` alpha (from which its ratio is recovered) marks an edge. Under ``alpha`` 0 colour
    is black (``TO_PLANES``; the alpha plane is ``alpha`` itself), or pixels are composited
    over the ``background`` planes (``OVER_BACKGROUND``; chroma with the block's mean alpha).
    RGBA pixels get their own luma with their block's colour difference (nearest chroma: the
    encoder averages the same 2x2 blocks again). ``scratch`` (chunks, 6, chroma width)
    float32: the row buffers of each chunk of strips (the strips are split into that many),
    so nothing is allocated per call.

    With ``TO_RGBA``, ``rgba`` is known to be zero outside the box ``stale`` = (y0, y1, x0,
    x1) (what it held before), so only that part of the transparent pixels is cleared. Either
    way ``spans`` (chroma height, 2) int32 gets each strip's run of blocks with a visible pixel
    ``[lo, hi)`` (``lo == hi``: none), from which the caller boxes what is not transparent.
    """
    y, u, v = planes
    pre, alpha = mattes
    slope, offset, guide = model
    y_off, y_scale, c_off, c_scale, rv, gu, gv, bu, kr, kb, y_black, y_span, c_zero, c_span = colour
    hi, inv_width, clip_black, inv_clip = matte
    primary, limit_mode, spill, lum_p = despill
    bg_y, bg_u, bg_v = background
    y_out, u_out, v_out = out
    to_rgba = mode == TO_RGBA
    flatten = mode == OVER_BACKGROUND
    h, w = y.shape
    hc, wc = h // 2, w // 2
    sy0, sy1, sx0, sx1 = stale
    gh = gcols.shape[0]
    f32 = np.float32
    kr = f32(kr)
    kb = f32(kb)
    spill = f32(spill)
    lum_p = f32(lum_p)
    bc = (f32(y_off), f32(y_scale), f32(c_off), f32(c_scale), f32(rv), f32(gu), f32(gv), f32(bu),
          kr, kb)
    mc = (f32(hi), f32(inv_width), f32(clip_black), f32(inv_clip))
    dc = (primary, limit_mode, spill, lum_p)
    pixel = (f32(y_off), f32(y_scale), f32(hi - clip_black / inv_width),
             f32(1.0 / 255.0 / inv_clip / inv_width), spill)
    luma = (f32(y_black), f32(y_span / 255.0))
    chroma = (f32(c_zero), f32(c_span / 255.0) / (f32(2.0) * (f32(1.0) - kb)),
              f32(c_span / 255.0) / (f32(2.0) * (f32(1.0) - kr)))
    fill = (np.uint8(y_black), np.uint8(c_zero))
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
                _background_row(lo, hi_, flatten, i0, ci, fill, (bg_y, bg_u, bg_v),
                                (y_out, u_out, v_out))
            if lo == hi_:
                continue
            n = hi_ - lo
            j0 = 2 * lo
            j1 = 2 * hi_
            a0, a1, fy = _row_weights(ci, cell, gh)
            blocks = (dyb[:n], ysb[:n], rb[:n], gb[:n], bb[:n])
            _block_colours((y[i0, j0:j1], y[i1, j0:j1], u[ci, lo:hi_], v[ci, lo:hi_]),
                           (slope[ci, lo:hi_], offset[ci, lo:hi_], guide[ci, lo:hi_]),
                           (gcols[a0, 0, lo:hi_], gcols[a0, 1, lo:hi_], gcols[a0, 2, lo:hi_],
                            gcols[a1, 0, lo:hi_], gcols[a1, 1, lo:hi_], gcols[a1, 2, lo:hi_]),
                           fy, bc, mc, dc, blocks)
            for i in range(i0, i0 + 2):
                row = (y[i, j0:j1], alpha[i, j0:j1], pre[i, j0:j1])
                if to_rgba:
                    _keyed_rgba_row(row, blocks, pixel, rgba[i, j0:j1])
                elif flatten:
                    _flattened_luma_row(row, blocks, pixel, luma, i == i0, bg_y[i, j0:j1],
                                        seen[:n], y_out[i, j0:j1])
                else:
                    _keyed_luma_row(row, blocks, pixel, luma, i == i0, seen[:n],
                                    y_out[i, j0:j1])
            if to_rgba:
                continue
            if flatten:
                _flattened_chroma_row(seen[:n], blocks, chroma, bg_u[ci, lo:hi_],
                                      bg_v[ci, lo:hi_], u_out[ci, lo:hi_], v_out[ci, lo:hi_])
            else:
                _keyed_chroma_row(seen[:n], blocks, chroma, u_out[ci, lo:hi_], v_out[ci, lo:hi_])
