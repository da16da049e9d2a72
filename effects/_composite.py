"""Compositing kernel shared by drop-shadow and outline: a flat-colour layer UNDER the subject."""
from __future__ import annotations

import numpy as np

from keyer._jit import kernel_parallel, prange


@kernel_parallel
def under(src, layer, r, g, b, layer_only, out):
    """Composite ``src`` (straight-alpha RGBA uint8) OVER a layer of colour (r, g, b) whose
    coverage is ``layer`` (float32 0..1).

    Notes: ``a = as + al * (1 - as)``, ``c = (cs * as + cl * al * (1 - as)) / a``. With
    ``layer_only`` the subject is left out and only the layer is written.
    """
    h, w = src.shape[0], src.shape[1]
    for i in prange(h):
        for j in range(w):
            al = layer[i, j]
            if layer_only:
                a = al
                if a <= 0.0:
                    out[i, j, 0] = 0
                    out[i, j, 1] = 0
                    out[i, j, 2] = 0
                    out[i, j, 3] = 0
                else:
                    out[i, j, 0] = r
                    out[i, j, 1] = g
                    out[i, j, 2] = b
                    out[i, j, 3] = np.uint8(a * 255.0 + 0.5)
                continue
            sa = src[i, j, 3]
            if sa == 255 or al <= 0.0:
                out[i, j, 0] = src[i, j, 0]
                out[i, j, 1] = src[i, j, 1]
                out[i, j, 2] = src[i, j, 2]
                out[i, j, 3] = sa
                continue
            fs = sa / 255.0
            wl = al * (1.0 - fs)
            a = fs + wl
            inv = 1.0 / a
            out[i, j, 0] = np.uint8((src[i, j, 0] * fs + r * wl) * inv + 0.5)
            out[i, j, 1] = np.uint8((src[i, j, 1] * fs + g * wl) * inv + 0.5)
            out[i, j, 2] = np.uint8((src[i, j, 2] * fs + b * wl) * inv + 0.5)
            out[i, j, 3] = np.uint8(a * 255.0 + 0.5)


def warm() -> None:
    s = np.zeros((2, 2, 4), np.uint8)
    under(s, np.zeros((2, 2), np.float32), 0, 0, 0, False, np.empty_like(s))
    alpha_below(s, 128, np.zeros((2, 2), np.uint8))
    alpha_scaled(s, np.float32(1), np.zeros((2, 2), np.float32))


@kernel_parallel
def alpha_below(src, threshold, out):
    """``out = 255`` where alpha < threshold else 0 (uint8): the outside of the subject."""
    h, w = src.shape[0], src.shape[1]
    for i in prange(h):
        for j in range(w):
            out[i, j] = 255 if src[i, j, 3] < threshold else 0


@kernel_parallel
def alpha_scaled(src, scale, out):
    """``out = alpha * scale`` as float32."""
    h, w = src.shape[0], src.shape[1]
    for i in prange(h):
        for j in range(w):
            out[i, j] = src[i, j, 3] * scale
