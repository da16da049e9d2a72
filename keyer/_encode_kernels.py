"""Numba kernels that prepare a keyed frame for the encoder."""
from __future__ import annotations

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
def rgba_to_yuv(rgba, background, flatten, kr, kb, bits, sub, y, u, v, a):
    """Straight-alpha RGBA -> limited-range Y'CbCr planes (+ alpha), in one pass.

    Colour is zeroed where alpha is 0 (``flatten`` = False) or composited over ``background``
    (``flatten`` = True, ``a`` unused). ``sub`` = 1: 4:2:0, chroma the 2x2 mean (centre-sited,
    as swscale's default); 0: 4:4:4. ``bits`` 8 (uint8 planes) or 10 (uint16 planes, alpha
    full range 0..1023). Y = 16 + 219 Y', C = 128 + 224 C' (scaled by 2^(bits-8)).
    """
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
                    y[i, j] = int((16.0 + 219.0 * yy) * scale + 0.5)
                    sr += r
                    sg += g
                    sb += b
                    n += 1
            r = sr / n / 255.0
            g = sg / n / 255.0
            b = sb / n / 255.0
            yy = kr * r + kg * g + kb * b
            u[ci, cj] = int((128.0 + 224.0 * (b - yy) * cb_k) * scale + 0.5)
            v[ci, cj] = int((128.0 + 224.0 * (r - yy) * cr_k) * scale + 0.5)


@kernel_parallel
def rgba_to_yuv420(rgba, background, flatten, kr, kb, y, u, v, a):
    """``rgba_to_yuv`` for 8-bit 4:2:0 and an even-sized picture, the common case, written
    without its general loops (numba makes ~2.5x faster code of this straight-line form);
    same arithmetic, same results."""
    h, w = rgba.shape[0], rgba.shape[1]
    kg = 1.0 - kr - kb
    cb_k = 0.5 / (1.0 - kb)
    cr_k = 0.5 / (1.0 - kr)
    for ci in prange(h // 2):
        for cj in range(w // 2):
            sr = 0.0
            sg = 0.0
            sb = 0.0
            for i in range(2 * ci, 2 * ci + 2):
                for j in range(2 * cj, 2 * cj + 2):
                    al = rgba[i, j, 3]
                    if flatten:
                        r, g, b = _over(rgba, background, i, j)
                    else:
                        a[i, j] = al
                        if al == 0:
                            y[i, j] = 16
                            continue
                        r = float(rgba[i, j, 0])
                        g = float(rgba[i, j, 1])
                        b = float(rgba[i, j, 2])
                    y[i, j] = int(16.0 + 219.0 * ((kr * r + kg * g + kb * b) / 255.0) + 0.5)
                    sr += r
                    sg += g
                    sb += b
            r = sr / 4.0 / 255.0
            g = sg / 4.0 / 255.0
            b = sb / 4.0 / 255.0
            yy = kr * r + kg * g + kb * b
            u[ci, cj] = int(128.0 + 224.0 * (b - yy) * cb_k + 0.5)
            v[ci, cj] = int(128.0 + 224.0 * (r - yy) * cr_k + 0.5)
