"""The RGBA path's kernels: a decoded picture to RGBA, then the chroma key in place on it.

``planes_to_rgba`` (or ``rgb_to_rgba``, for what swscale converted) makes the frame;
``ratio_and_screen_stats`` gives each pixel its colour-difference ratio against a smooth local
estimate of the screen colour and gathers the screen statistics the next estimate is made from
(``keyer.kernels.screen``); after the guided filter (``keyer.kernels.guided``),
``matte_and_despill`` turns the filtered ratio into alpha and removes spill. The planar path
(``keyer.kernels.planar``) keys 4:2:0 planes without making an RGBA frame.
"""
from __future__ import annotations

import numpy as np

from keyer._jit import kernel, kernel_parallel, prange

# The model's ratio below which a sample was filled by the core matte (keyer.kernels.core.CORE_Q;
# written out here, as Numba's cache watches only this file): opaque, colour kept.
CORE_Q = np.float32(-4.0)


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


@kernel_parallel
def planes_to_rgba(planes, sub, colour, rows, out):
    """Y'CbCr planes (uint8 or uint16, any of 4:2:0 / 4:2:2 / 4:4:4) to RGBA uint8, A = 255.

    ``planes`` = (Y', Cb, Cr); ``sub`` = (x, y): 1 where chroma is subsampled; ``colour``: the
    stream's eight reading constants ``(y_off, y_scale, c_off, c_scale, rv, gu, gv, bu)``
    float32 (``keyer.colour.YCbCr.coefficients``). Chroma is upsampled bilinearly with
    MPEG-2/H.264 siting (horizontally co-sited with even luma columns; vertically halfway
    between luma rows for 4:2:0), so edges are not stair-stepped.
    ``R = Y + rv*Cr``, ``G = Y - gu*Cb - gv*Cr``, ``B = Y + bu*Cb`` with Y, Cb, Cr normalised by
    ``(x - off) * scale`` to 0..255 and -127.5..127.5. Each row first interpolates its chroma
    rows vertically (once per chroma sample), then each pixel only horizontally. ``rows``
    (chunks, 2, chroma width + 1) float32: each chunk of rows' buffers for that (see
    ``keyer.kernels.chroma_rows``), so nothing is allocated inside (which would also make
    loading the kernel import numba's array library).
    """
    y, u, v = planes
    sub_x, sub_y = sub
    y_off, y_scale, c_off, c_scale, rv, gu, gv, bu = colour
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


@kernel
def _grid_row(grid, gy, rows):
    """The screen's R, G, B and difference along grid row position ``gy`` (cell units),
    interpolated between grid rows, per grid column into ``rows`` (4, columns + 1; the last
    column repeated)."""
    gh, gw = grid.shape[0], grid.shape[1]
    a0 = int(np.floor(gy))
    fy = gy - a0
    if a0 < 0:
        a0 = 0
        fy = 0.0
    a1 = a0 + 1 if a0 + 1 < gh else gh - 1
    for k in range(4):
        for c in range(gw):
            rows[k, c] = (1.0 - fy) * grid[a0, c, k] + fy * grid[a1, c, k]
        rows[k, gw] = rows[k, gw - 1]


@kernel_parallel
def ratio_and_screen_stats(rgba, grid, cell, cols, colour, key, ratio, tint, guide, stats,
                           rows):
    """Per pixel: the ratio ``q = 1 + d(pixel - S) / d_S`` against the local screen ``S``
    (1 on the screen, 0 on any neutral foreground, falling linearly with coverage along any
    mix of a foreground with the screen); per grid cell: sums and counts of pixels that look
    like screen.

    ``d`` is ``_difference`` of each channel's excess over the screen's: the primary's minus
    ``balance`` of the larger other excess and the rest of the smaller. ``d_S`` (the grid's
    fourth channel, ``screen.grid_blend``) is minus ``d`` of a neutral colour, the screen's
    primary minus ``balance`` of its smaller other channel and the rest of its larger; where
    it is under 1 (no screen to key) the ratio is 0. Unlike ``d(pixel) / d(S)`` (Keylight's),
    this is linear in coverage even where a mix changes which other channel is larger (a warm
    white veil on green). ``grid`` is (gh, gw, 4) float32: the screen's R, G, B and ``d_S`` per
    cell of ``cell`` px, sampled bilinearly at cell centres (``cols`` = (col0, colf): each
    column's left cell and weight, computed once per size). ``key`` = (primary 0/1/2,
    balance, screen_min, purity_min, purity_max): a pixel counts as screen when its
    ratio is over ``screen_min`` and its own ``_difference`` between
    ``purity_min`` and ``purity_max`` times its primary channel (``keyer.keying.PURITY_MIN``).
    The ratio is written as it is (the solid tolerance comes after,
    ``guided.foreground_scale``), and its ``tint`` (``_tint_weights``: 0 on
    every neutral colour, scaling with coverage like ``1 - q``). ``guide`` gets the luma
    ``(Kr, Kg, Kb) = colour`` gives, in 0..1: the full-resolution guide for the matte filter.
    ``stats`` = (sums (gh, gw, 3), counts (gh, gw)) float32. Threads split the rows by grid
    row, so the statistics have no races. ``rows`` (grid rows, 4, grid columns + 1) float32:
    each grid row's buffer for the screen along it.
    """
    col0, colf = cols
    primary, balance, screen_min, pure_min, pure_max = key
    sums, counts = stats
    kr, kg, kb = colour
    wr = np.float32(kr / 255.0)
    wg = np.float32(kg / 255.0)
    wb = np.float32(kb / 255.0)
    tw_r, tw_g, tw_b = _tint_weights(primary)
    h, w = ratio.shape
    gh, gw = grid.shape[0], grid.shape[1]
    for gi in prange(gh):
        srow = rows[gi]
        _clear_stats_row(sums, counts, gi)
        i_end = min((gi + 1) * cell, h)
        for i in range(gi * cell, i_end):
            _grid_row(grid, (i + 0.5) / cell - 0.5, srow)
            for j in range(w):
                b0 = col0[j]
                fx = colf[j]
                sr = srow[0, b0] + fx * (srow[0, b0 + 1] - srow[0, b0])
                sg = srow[1, b0] + fx * (srow[1, b0 + 1] - srow[1, b0])
                sb = srow[2, b0] + fx * (srow[2, b0 + 1] - srow[2, b0])
                ds = srow[3, b0] + fx * (srow[3, b0 + 1] - srow[3, b0])
                r = np.float32(rgba[i, j, 0])
                g = np.float32(rgba[i, j, 1])
                b = np.float32(rgba[i, j, 2])
                d = _difference(r - sr, g - sg, b - sb, primary, balance)
                q = np.float32(1.0) + d / ds if ds > 1.0 else np.float32(0.0)
                ratio[i, j] = q
                t = tw_r * (r - q * sr) + tw_g * (g - q * sg) + tw_b * (b - q * sb)
                tint[i, j] = t / ds if ds > 1.0 else np.float32(0.0)
                guide[i, j] = wr * r + wg * g + wb * b
                p, _, _ = _split(r, g, b, primary)
                own = _difference(r, g, b, primary, balance)
                if q > screen_min and pure_min * p < own < pure_max * p:
                    cj = j // cell
                    sums[gi, cj, 0] += r
                    sums[gi, cj, 1] += g
                    sums[gi, cj, 2] += b
                    counts[gi, cj] += 1.0


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


@kernel_parallel
def matte_and_despill(rgba, model, grid, cell, matte, despill):
    """Alpha from the filtered ratio, then spill removal, in place on ``rgba``.

    ``model`` = (slope, offset, guide): the ratio is the guided filter's output
    ``slope * guide + offset`` (pass ``slope`` = 0 and ``offset`` = the ratio to use it
    unfiltered). ``matte`` = (hi, inv_width, clip_black, inv_clip):
    ``alpha = clip((hi - ratio) * inv_width)``, then clip black/white:
    ``alpha = clip((alpha - clip_black) * inv_clip)``.
    Edge pixels (0 < alpha < 1) are un-mixed from the local screen colour S (``grid``, cells of
    ``cell`` px) using the linear coverage estimate ``c = 1 - ratio``: ``F = (C - (1 - c) * S) / c``
    (screen subtraction: removes the fringe without shifting hues). Then spill, with
    ``despill`` = (primary, limit_mode, spill, lum_p): the primary channel is limited to ``L`` =
    max / average / min of the other two (``limit_mode`` 0 / 1 / 2); ``spill`` (0..1) of the
    excess is removed and the luminance it carried (``lum_p``, the primary's luma weight, x
    removed) is added back to all three channels, so edges neither darken nor brighten. With
    the ``max`` limit a yellow stays yellow.
    """
    slope, offset, guide = model
    hi, inv_width, clip_black, inv_clip = matte
    primary, limit_mode, spill, lum_p = despill
    h, w = guide.shape
    for i in prange(h):
        for j in range(w):
            q = slope[i, j] * guide[i, j] + offset[i, j]
            a = (hi - q) * inv_width
            a = (a - clip_black) * inv_clip
            if a < 0.0:
                a = 0.0
            elif a > 1.0:
                a = 1.0
            rgba[i, j, 3] = np.uint8(a * 255.0 + 0.5)
            if a <= 0.0 or spill <= 0.0 or q < CORE_Q:   # core matte: colour kept
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
