"""keyer's Numba kernels, one module per computation. Pure functions ``(inputs, scalars, out)``.

* ``rgba``: the RGBA path: a decoded picture to RGBA, then the key in place on it (each
  pixel's ratio against the local screen, with the screen's statistics; then matte and despill).
* ``planar``: the planar path: the same key from 8-bit 4:2:0 Y'CbCr planes at chroma
  resolution, straight to the encoder's planes (or to RGBA for the effects), no RGB frame.
* ``guided``: the ratio's foreground scale and the guided filter that steadies it, with the
  faint coverage luma confirms kept on its model (both paths).
* ``screen``: the local screen estimate, a grid renewed from each frame's statistics (both paths).
* ``encode``: a keyed RGBA frame to the encoder's Y'CbCr(A) planes.

Kernels validate nothing (their Python wrappers in ``keyer.keying``, ``keyer.colour`` and
``keyer.encode`` do). A kernel that needs colour constants (matrix, luma weights, range codes)
takes them as one tuple argument, ``colour``, made from ``keyer.colour``: not as literals, and
not as module globals imported from there, which Numba would freeze into the cached code
without noticing when ``keyer/colour.py`` changes. Numba's disk cache watches only the file
that defines a kernel, so each module holds the ``@kernel`` helpers its kernels call: the few
both key paths need (``_split``, ``_join``, ``_difference``, ``_despill``, ...) are written out
in each module, and tests/test_kernels.py checks that the copies stay the same.
"""
from __future__ import annotations

import numpy as np

ROW_CHUNKS = 32   # row chunks that rgba.planes_to_rgba and planar.planar_alpha share among threads


def chroma_rows(height: int, chroma_width: int) -> np.ndarray:
    """Two float32 rows of ``chroma_width + 1`` per chunk of a picture's ``height`` rows: the
    buffers ``rgba.planes_to_rgba`` and ``planar.planar_alpha`` interpolate chroma-resolution
    rows into, made once per picture size."""
    return np.zeros((max(1, min(height, ROW_CHUNKS)), 2, chroma_width + 1), np.float32)
