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
    return p - (balance * hi + (1.0 - balance) * lo)


@kernel_parallel
def planes_to_rgba(y, u, v, sub_x, sub_y, y_off, y_scale, c_off, c_scale,
                   rv, gu, gv, bu, out):
    """Y'CbCr planes (uint8 or uint16, any of 4:2:0 / 4:2:2 / 4:4:4) to RGBA uint8, A = 255.

    Chroma is upsampled bilinearly with MPEG-2/H.264 siting (horizontally co-sited with even
    luma columns; vertically halfway between luma rows for 4:2:0), so edges are not stair-stepped.
    ``R = Y + rv*Cr``, ``G = Y - gu*Cb - gv*Cr``, ``B = Y + bu*Cb`` with Y, Cb, Cr normalised by
    ``(x - off) * scale`` to 0..255 and -127.5..127.5. Each row first interpolates its chroma
    rows vertically (once per chroma sample), then each pixel only horizontally.
    """
    h, w = y.shape
    hc, wc = u.shape
    for i in prange(h):
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
        cb_row = np.empty(wc + 1, np.float32)
        cr_row = np.empty(wc + 1, np.float32)
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
def ratio_and_screen_stats(rgba, grid, cell, col0, colf, primary, balance, screen_min,
                           ratio, luma, sums, counts):
    """Per pixel: ``ratio = d(pixel) / d(local screen)`` (1 on the screen, <= 0 on neutral
    foreground); per grid cell: sums and counts of pixels that look like screen.

    ``grid`` is (gh, gw, 4) float32: the screen's R, G, B and its own difference ``d`` per cell,
    sampled bilinearly at cell centres (``col0``/``colf``: each column's left cell and weight,
    computed once per size). A pixel counts as screen when its ratio is over ``screen_min``.
    ``luma`` gets BT.709 luma in 0..1: the full-resolution guide for the matte filter.
    Threads split the rows by grid row, so the statistics have no races.
    """
    h, w = ratio.shape
    gh, gw = grid.shape[0], grid.shape[1]
    for gi in prange(gh):
        rds = np.empty(gw + 1, np.float32)
        for c in range(gw):
            sums[gi, c, 0] = 0.0
            sums[gi, c, 1] = 0.0
            sums[gi, c, 2] = 0.0
            counts[gi, c] = 0.0
        i_end = min((gi + 1) * cell, h)
        for i in range(gi * cell, i_end):
            gy = (i + 0.5) / cell - 0.5
            a0 = int(np.floor(gy))
            fy = gy - a0
            if a0 < 0:
                a0 = 0
                fy = 0.0
            a1 = a0 + 1 if a0 + 1 < gh else gh - 1
            for c in range(gw):
                rds[c] = (1.0 - fy) * grid[a0, c, 3] + fy * grid[a1, c, 3]
            rds[gw] = rds[gw - 1]
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


@kernel_parallel
def guide_products(guide, src, g_src, g_g):
    """``g_src = guide * src`` and ``g_g = guide * guide`` (inputs of the guided filter)."""
    h, w = guide.shape
    for i in prange(h):
        for j in range(w):
            g = guide[i, j]
            g_src[i, j] = g * src[i, j]
            g_g[i, j] = g * g


@kernel_parallel
def guide_coefficients(mean_g, mean_s, mean_gs, mean_gg, eps, a_out, b_out):
    """Local linear model of the guided filter: ``a = cov(g, s) / (var(g) + eps)``,
    ``b = mean(s) - a * mean(g)``. Outputs may alias ``mean_gs`` / ``mean_gg``."""
    h, w = mean_g.shape
    for i in prange(h):
        for j in range(w):
            mg = mean_g[i, j]
            ms = mean_s[i, j]
            a = (mean_gs[i, j] - mg * ms) / (mean_gg[i, j] - mg * mg + eps)
            a_out[i, j] = a
            b_out[i, j] = ms - a * mg


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
            p, o1, o2 = _split(r, g, b, primary)
            mx = o1 if o1 > o2 else o2
            mn = o2 if o1 > o2 else o1
            if limit_mode == 0:
                lim = mx
            elif limit_mode == 2:
                lim = mn
            else:
                lim = 0.5 * (mx + mn)
            excess = p - lim
            if excess > 0.0:
                removed = excess * spill
                add = lum_p * removed
                p = p - removed + add
                o1 = o1 + add
                o2 = o2 + add
            r, g, b = _join(p, o1, o2, primary)
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
