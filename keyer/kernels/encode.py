"""The encoder's kernels: a keyed straight-alpha RGBA frame to planar Y'CbCr(A), in one pass.

``rgba_to_yuv`` is the general one (4:2:0 or 4:4:4, 8 or 10 bits); ``rgba_to_yuv420`` the
common case (8-bit 4:2:0, even size) written for speed, with the same arithmetic and results.
Both take the output's colour as one tuple ``colour`` = (Kr, Kb, Y' black, Y' span, C zero,
C span) (``keyer.colour.OUTPUT``: BT.709, limited range): ``Y = black + span * Y'``,
``C = zero + span * C'``, codes of 8 bits scaled by 2^(bits-8). ``zero_transparent`` prepares
an RGBA frame for PNG.
"""
from __future__ import annotations

import numpy as np

from keyer._jit import kernel, kernel_parallel, prange


@kernel
def _over(rgba, background, i, j):
    """Pixel (i, j) of straight-alpha ``rgba`` composited over ``background``, as floats."""
    f = rgba[i, j, 3] / 255.0
    return (rgba[i, j, 0] * f + background[i, j, 0] * (1.0 - f),
            rgba[i, j, 1] * f + background[i, j, 1] * (1.0 - f),
            rgba[i, j, 2] * f + background[i, j, 2] * (1.0 - f))


@kernel_parallel
def zero_transparent(rgba, out):
    """Copy RGBA, with colour zeroed where alpha is 0 (smaller files: noise is not encoded)."""
    h, w = rgba.shape[0], rgba.shape[1]
    for i in prange(h):
        for j in range(w):
            a = rgba[i, j, 3]
            if a == 0:
                out[i, j, 0] = 0
                out[i, j, 1] = 0
                out[i, j, 2] = 0
                out[i, j, 3] = 0
            else:
                out[i, j, 0] = rgba[i, j, 0]
                out[i, j, 1] = rgba[i, j, 1]
                out[i, j, 2] = rgba[i, j, 2]
                out[i, j, 3] = a


@kernel_parallel
def rgba_to_yuv(rgba, background, flatten, colour, bits, sub, out):
    """Straight-alpha RGBA -> limited-range Y'CbCr planes (+ alpha), in one pass.

    Colour is zeroed where alpha is 0 (``flatten`` = False) or composited over ``background``
    (``flatten`` = True, the alpha plane unused). ``sub`` = 1: 4:2:0, chroma the 2x2 mean
    (centre-sited, as swscale's default); 0: 4:4:4. ``bits`` 8 (uint8 planes) or 10 (uint16
    planes, alpha full range 0..1023). ``out`` = the (Y', Cb, Cr, A) planes; ``colour`` as in
    the module's docstring: Y = 16 + 219 Y', C = 128 + 224 C' for BT.709 limited range.
    """
    y, u, v, a = out
    kr, kb, y_black, y_span, c_zero, c_span = colour
    h, w = rgba.shape[0], rgba.shape[1]
    kg = 1.0 - kr - kb
    scale = float(1 << (bits - 8))
    amax = float((1 << bits) - 1)
    cb_k = 0.5 / (1.0 - kb)
    cr_k = 0.5 / (1.0 - kr)
    step = 2 if sub else 1
    hc = (h + step - 1) // step
    for ci in prange(hc):
        for cj in range((w + step - 1) // step):
            sr = 0.0
            sg = 0.0
            sb = 0.0
            n = 0
            for di in range(step):
                i = ci * step + di
                if i >= h:
                    continue
                for dj in range(step):
                    j = cj * step + dj
                    if j >= w:
                        continue
                    al = rgba[i, j, 3]
                    if flatten:
                        r, g, b = _over(rgba, background, i, j)
                    elif al == 0:
                        r = 0.0
                        g = 0.0
                        b = 0.0
                    else:
                        r = float(rgba[i, j, 0])
                        g = float(rgba[i, j, 1])
                        b = float(rgba[i, j, 2])
                        a[i, j] = al if bits == 8 else int(al * amax / 255.0 + 0.5)
                    if not flatten and al == 0:
                        a[i, j] = 0
                    yy = (kr * r + kg * g + kb * b) / 255.0
                    y[i, j] = int((y_black + y_span * yy) * scale + 0.5)
                    sr += r
                    sg += g
                    sb += b
                    n += 1
            r = sr / n / 255.0
            g = sg / n / 255.0
            b = sb / n / 255.0
            yy = kr * r + kg * g + kb * b
            u[ci, cj] = int((c_zero + c_span * (b - yy) * cb_k) * scale + 0.5)
            v[ci, cj] = int((c_zero + c_span * (r - yy) * cr_k) * scale + 0.5)


SCAN = 32   # pixels OR-ed together per step of a span scan (the loop vectorises)


@kernel
def _visible_span(p0, p1):
    """Pixels ``[lo, hi)`` of two rows of packed RGBA (uint32, alpha the top byte) from the
    first to the last whose alpha is not 0 in either row; ``(0, 0)`` when there is none."""
    w = p0.shape[0]
    lo = 0
    while lo + SCAN <= w:
        a = p0[lo:lo + SCAN]
        b = p1[lo:lo + SCAN]
        acc = np.uint32(0)
        for k in range(SCAN):
            acc |= a[k] | b[k]
        if acc > 0xFFFFFF:
            break
        lo += SCAN
    while lo < w and (p0[lo] | p1[lo]) <= 0xFFFFFF:
        lo += 1
    if lo == w:
        return 0, 0
    hi = w
    while hi - SCAN >= lo:
        a = p0[hi - SCAN:hi]
        b = p1[hi - SCAN:hi]
        acc = np.uint32(0)
        for k in range(SCAN):
            acc |= a[k] | b[k]
        if acc > 0xFFFFFF:
            break
        hi -= SCAN
    while (p0[hi - 1] | p1[hi - 1]) <= 0xFFFFFF:
        hi -= 1
    return lo, hi


@kernel
def _yuv_pixel(v, luma):
    """(R, G, B, Y) of one packed RGBA pixel (uint32, R lowest), colour 0 under alpha 0, as
    floats, and Y as ``rgba_to_yuv420`` codes it (``luma`` = (Kr, Kg, Kb, Y' black, Y' span))."""
    kr, kg, kb, y_black, y_span = luma
    u32 = np.uint32
    keep = (v >> u32(24)) != u32(0)
    # via int32: AVX2 converts int32 to float64 four at a time, uint32 one by one
    r = float(np.int32(v & u32(0xFF))) if keep else 0.0
    g = float(np.int32((v >> u32(8)) & u32(0xFF))) if keep else 0.0
    b = float(np.int32((v >> u32(16)) & u32(0xFF))) if keep else 0.0
    return r, g, b, np.int32(y_black + y_span * ((kr * r + kg * g + kb * b) / 255.0) + 0.5)


@kernel
def _block_chroma(sr, sg, sb, chroma):
    """(Cb, Cr) codes of a 2x2 block from its colour sums (0..4*255 each): the general kernel's
    arithmetic, in its order. ``chroma`` = (Kr, Kg, Kb, C zero, C span, cb_k, cr_k) with
    ``cb_k`` = 0.5 / (1 - kb), ``cr_k`` = 0.5 / (1 - kr), from the caller: divided here, in the
    loop, they made the row kernels 2x slower."""
    kr, kg, kb, c_zero, c_span, cb_k, cr_k = chroma
    r = sr / 4.0 / 255.0
    g = sg / 4.0 / 255.0
    b = sb / 4.0 / 255.0
    yy = kr * r + kg * g + kb * b
    return (np.int32(c_zero + c_span * (b - yy) * cb_k + 0.5),
            np.int32(c_zero + c_span * (r - yy) * cr_k + 0.5))


@kernel
def _coefficients(colour):
    """(luma, chroma): the tuples ``_yuv_pixel`` / ``_over_pixel`` and ``_block_chroma`` take,
    from the output's ``colour``."""
    kr, kb, y_black, y_span, c_zero, c_span = colour
    kg = 1.0 - kr - kb
    cb_k = 0.5 / (1.0 - kb)
    cr_k = 0.5 / (1.0 - kr)
    return (kr, kg, kb, y_black, y_span), (kr, kg, kb, c_zero, c_span, cb_k, cr_k)


@kernel
def _yuva_rows(rows, colour, out):
    """``rgba_to_yuv420``'s arithmetic (colour 0 under alpha 0, alpha kept) for a run of 2x2
    blocks of two rows of packed pixels ``rows`` into ``out`` = (y0, y1, a0, a1, u, v), every
    array sliced to start at the run (indices from 0, no branches: the loop vectorises, ~2x
    faster than the byte-wise form)."""
    p0, p1 = rows
    y0, y1, a0, a1, u, v = out
    luma, chroma = _coefficients(colour)
    u32 = np.uint32
    for cj in range(u.shape[0]):
        ja = 2 * cj
        jb = ja + 1
        r00, g00, b00, l00 = _yuv_pixel(p0[ja], luma)
        r01, g01, b01, l01 = _yuv_pixel(p0[jb], luma)
        r10, g10, b10, l10 = _yuv_pixel(p1[ja], luma)
        r11, g11, b11, l11 = _yuv_pixel(p1[jb], luma)
        y0[ja] = l00
        y0[jb] = l01
        y1[ja] = l10
        y1[jb] = l11
        a0[ja] = p0[ja] >> u32(24)
        a0[jb] = p0[jb] >> u32(24)
        a1[ja] = p1[ja] >> u32(24)
        a1[jb] = p1[jb] >> u32(24)
        # the sums in the order the byte-wise loop adds them: the same float64 results
        cb, cr = _block_chroma(((r00 + r01) + r10) + r11, ((g00 + g01) + g10) + g11,
                               ((b00 + b01) + b10) + b11, chroma)
        u[cj] = cb
        v[cj] = cr


@kernel
def _over_pixel(v, br, bg, bb, luma):
    """``_yuv_pixel`` for a packed pixel composited over the background colour (br, bg, bb):
    ``_over``'s arithmetic, in its order."""
    kr, kg, kb, y_black, y_span = luma
    u32 = np.uint32
    f = float(np.int32(v >> u32(24))) / 255.0
    r = float(np.int32(v & u32(0xFF))) * f + br * (1.0 - f)
    g = float(np.int32((v >> u32(8)) & u32(0xFF))) * f + bg * (1.0 - f)
    b = float(np.int32((v >> u32(16)) & u32(0xFF))) * f + bb * (1.0 - f)
    return r, g, b, np.int32(y_black + y_span * ((kr * r + kg * g + kb * b) / 255.0) + 0.5)


@kernel
def _flat_rows(rows, under, colour, out):
    """``_yuva_rows`` for pixels composited over the background rows ``under`` = (g0, g1)
    ((n, 3) uint8), into ``out`` = (y0, y1, u, v): no alpha plane; every array sliced to start
    at the run."""
    p0, p1 = rows
    g0, g1 = under
    y0, y1, u, v = out
    luma, chroma = _coefficients(colour)
    for cj in range(u.shape[0]):
        ja = 2 * cj
        jb = ja + 1
        r00, g00, b00, l00 = _over_pixel(p0[ja], float(g0[ja, 0]), float(g0[ja, 1]),
                                         float(g0[ja, 2]), luma)
        r01, g01, b01, l01 = _over_pixel(p0[jb], float(g0[jb, 0]), float(g0[jb, 1]),
                                         float(g0[jb, 2]), luma)
        r10, g10, b10, l10 = _over_pixel(p1[ja], float(g1[ja, 0]), float(g1[ja, 1]),
                                         float(g1[ja, 2]), luma)
        r11, g11, b11, l11 = _over_pixel(p1[jb], float(g1[jb, 0]), float(g1[jb, 1]),
                                         float(g1[jb, 2]), luma)
        y0[ja] = l00
        y0[jb] = l01
        y1[ja] = l10
        y1[jb] = l11
        cb, cr = _block_chroma(((r00 + r01) + r10) + r11, ((g00 + g01) + g10) + g11,
                               ((b00 + b01) + b10) + b11, chroma)
        u[cj] = cb
        v[cj] = cr


@kernel_parallel
def rgba_to_yuv420(rgba, px, background, flatten, bg_planes, colour, out):
    """``rgba_to_yuv`` for 8-bit 4:2:0 and an even-sized picture, the common case, written
    without its general loops (numba makes ~2.5x faster code of this straight-line form);
    same arithmetic, same results. ``px`` is ``rgba`` as packed pixels ((H, W) uint32);
    ``out`` = the (Y', Cb, Cr, A) planes.
    The blocks of a row pair left and right of its visible pixels (most of a keyed frame)
    are written as what the arithmetic gives there: with ``flatten``, the background's own
    planes (``bg_planes`` = (Y', Cb, Cr), made from ``background`` by this kernel once per
    job; unused otherwise); without, plain fills (Y' black, A 0, Cb = Cr = zero: colour 0).
    The run between them is made by ``_flat_rows`` (composited) or ``_yuva_rows``."""
    bg_y, bg_u, bg_v = bg_planes
    y, u, v, a = out
    y_fill = np.uint8(colour[2])
    c_fill = np.uint8(colour[4])
    for ci in prange(rgba.shape[0] // 2):
        i0 = 2 * ci
        i1 = i0 + 1
        lo, hi = _visible_span(px[i0], px[i1])
        c0 = lo // 2
        c1 = (hi + 1) // 2
        j0 = 2 * c0
        j1 = 2 * c1
        if not flatten:
            for i in range(i0, i1 + 1):
                y[i, :j0] = y_fill
                y[i, j1:] = y_fill
                a[i, :j0] = 0
                a[i, j1:] = 0
            u[ci, :c0] = c_fill
            u[ci, c1:] = c_fill
            v[ci, :c0] = c_fill
            v[ci, c1:] = c_fill
            _yuva_rows((px[i0, j0:j1], px[i1, j0:j1]), colour,
                       (y[i0, j0:j1], y[i1, j0:j1], a[i0, j0:j1], a[i1, j0:j1], u[ci, c0:c1],
                        v[ci, c0:c1]))
            continue
        for i in range(i0, i1 + 1):
            y[i, :j0] = bg_y[i, :j0]
            y[i, j1:] = bg_y[i, j1:]
        u[ci, :c0] = bg_u[ci, :c0]
        u[ci, c1:] = bg_u[ci, c1:]
        v[ci, :c0] = bg_v[ci, :c0]
        v[ci, c1:] = bg_v[ci, c1:]
        _flat_rows((px[i0, j0:j1], px[i1, j0:j1]), (background[i0, j0:j1], background[i1, j0:j1]),
                   colour, (y[i0, j0:j1], y[i1, j0:j1], u[ci, c0:c1], v[ci, c0:c1]))
