"""Numba kernels that prepare a keyed frame for the encoder."""
from __future__ import annotations

import numpy as np

from keyer._jit import kernel_parallel, prange


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
def flatten(rgba, background, out):
    """Composite straight-alpha RGBA over an opaque RGB background: ``a*c + (1-a)*bg``."""
    h, w = rgba.shape[0], rgba.shape[1]
    for i in prange(h):
        for j in range(w):
            a = np.int32(rgba[i, j, 3])
            for c in range(3):
                v = a * np.int32(rgba[i, j, c]) + (255 - a) * np.int32(background[i, j, c])
                out[i, j, c] = np.uint8((v + 127) // 255)
