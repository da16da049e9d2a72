"""The guided filter's kernels (He & Sun): box sums with OpenCV's reflected borders, row by row.

Both key paths filter the matte's ratio with it (``keyer.keying._KeyBase._guided_model``):
``guided_fit`` fits the local linear model of the ratio by the luma guide, ``box_mean2`` takes
the box means of its coefficients. Nothing is allocated per call: row buffers come in
``scratch``.
"""
from __future__ import annotations

import numpy as np

from keyer._jit import kernel, kernel_parallel, prange


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
