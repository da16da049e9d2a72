"""Kernels shared by the effects: the subject's bounding box, what lies outside it, and the
flat-colour layer UNDER the subject (drop-shadow, outline).

Most of a keyed frame is transparent, so every effect finds the box of non-zero alpha once per
frame (:func:`subject_box`), pads it by its own reach (blur radius, displacement amount, shadow
offset) with :func:`pad`, works inside it only, and writes the rest with :func:`copy_outside` or
:func:`clear_outside` (what the full-frame computation gives there). Boxes are half-open
``(y0, y1, x0, x1)``; an empty box has ``y0 == y1``.
"""
from __future__ import annotations

import numpy as np

from keyer._jit import kernel

# How far from the subject a later effect reads colour under alpha 0 (surface-bevel's height
# from luma: Gaussian radius 4 + gradient 1). Effects that change only colour (multiply, add)
# compute it this far out and copy the source beyond; there it is invisible (alpha 0) and
# nothing reads it (the encoder zeroes colour under alpha 0).
COLOUR_REACH = 8


SCAN = 32   # pixels OR-ed together per step of the box scan (vectorises; alpha is the top byte)


@kernel
def _first(px, i, j0, j1):
    """The first j in [j0, j1) of row i whose alpha is not 0, else j1."""
    j = j0
    while j + SCAN <= j1:
        run = px[i, j:j + SCAN]   # indexed from 0: no negative-index check, so it vectorises
        acc = np.uint32(0)
        for k in range(SCAN):
            acc |= run[k]
        if acc > 0xFFFFFF:
            break
        j += SCAN
    while j < j1 and px[i, j] <= 0xFFFFFF:
        j += 1
    return j


@kernel
def _last(px, i, j0, j1):
    """The last j in [j0, j1) of row i whose alpha is not 0, else j0 - 1."""
    j = j1
    while j - SCAN >= j0:
        run = px[i, j - SCAN:j]
        acc = np.uint32(0)
        for k in range(SCAN):
            acc |= run[k]
        if acc > 0xFFFFFF:
            break
        j -= SCAN
    j -= 1
    while j >= j0 and px[i, j] <= 0xFFFFFF:
        j -= 1
    return j


@kernel
def alpha_box(px):
    """The half-open box ``(y0, y1, x0, x1)`` of the pixels whose alpha is not 0, ``(0, 0, 0,
    0)`` when there are none; ``px`` is the frame as (H, W) uint32 (RGBA little-endian: alpha is
    the top byte).

    Rows above and below the box are read once; rows inside it only outside its current left
    and right edges, so a pass reads the transparent part of the frame at most.
    """
    h, w = px.shape
    y0 = 0
    x0 = w
    while y0 < h:
        x0 = _first(px, y0, 0, w)
        if x0 < w:
            break
        y0 += 1
    if y0 == h:
        return 0, 0, 0, 0
    y1 = h - 1
    x1 = _last(px, y1, 0, w)
    while x1 < 0:
        y1 -= 1
        x1 = _last(px, y1, 0, w)
    for i in range(y0, y1 + 1):
        x0 = _first(px, i, 0, x0)
        x1 = max(x1, _last(px, i, x1 + 1, w))
    return y0, y1 + 1, x0, x1 + 1


def words(pixels: np.ndarray, dtype) -> np.ndarray:
    """An (H, W, C) picture whose pixels are contiguous as (H, W) packed pixels of ``dtype``
    (one word per pixel: RGBA uint8 as uint32, RGBA uint16 as uint64; little-endian, channel
    0 lowest). Always a view (a reshape could copy, and writes would then be lost)."""
    return pixels.view(dtype)[..., 0]


def subject_box(src: np.ndarray) -> tuple[int, int, int, int]:
    """The box of non-zero alpha of an (H, W, 4) uint8 C-contiguous RGBA frame."""
    return alpha_box(words(src, np.uint32))


def pad(box: tuple[int, int, int, int], reach: int, h: int, w: int) -> tuple[int, int, int, int]:
    """``box`` grown by ``reach`` px on every side, clipped to the (h, w) frame; empty stays empty."""
    y0, y1, x0, x1 = box
    if y0 >= y1:
        return box
    return max(0, y0 - reach), min(h, y1 + reach), max(0, x0 - reach), min(w, x1 + reach)


def copy_outside(src: np.ndarray, box: tuple[int, int, int, int], out: np.ndarray) -> None:
    """``out = src`` outside the box; the box itself is not touched. (NumPy slice copies: row
    spans are memcpy, several times faster than a Numba loop over bytes.)"""
    y0, y1, x0, x1 = box
    if y0 >= y1:
        np.copyto(out, src)
        return
    out[:y0] = src[:y0]
    out[y1:] = src[y1:]
    out[y0:y1, :x0] = src[y0:y1, :x0]
    out[y0:y1, x1:] = src[y0:y1, x1:]


def clear_outside(box: tuple[int, int, int, int], out: np.ndarray) -> None:
    """``out = 0`` (transparent black) outside the box; the box itself is not touched."""
    y0, y1, x0, x1 = box
    if y0 >= y1:
        out.fill(0)
        return
    out[:y0] = 0
    out[y1:] = 0
    out[y0:y1, :x0] = 0
    out[y0:y1, x1:] = 0


@kernel
def under(src, layer, r, g, b, layer_only, y0, y1, x0, x1, out):
    """Composite ``src`` (straight-alpha RGBA uint8) OVER a layer of colour (r, g, b) whose
    coverage is ``layer`` (float32 0..1), inside the box only.

    Notes: ``a = as + al * (1 - as)``, ``c = (cs * as + cl * al * (1 - as)) / a``. With
    ``layer_only`` the subject is left out and only the layer is written. (Row runs indexed
    from 0: no negative-index check per access.)
    """
    for i in range(y0, y1):
        s = src[i, x0:x1]
        lr = layer[i, x0:x1]
        o = out[i, x0:x1]
        for k in range(s.shape[0]):
            al = lr[k]
            if layer_only:
                if al <= 0.0:
                    o[k, 0] = 0
                    o[k, 1] = 0
                    o[k, 2] = 0
                    o[k, 3] = 0
                else:
                    o[k, 0] = r
                    o[k, 1] = g
                    o[k, 2] = b
                    o[k, 3] = np.uint8(al * 255.0 + 0.5)
                continue
            sa = s[k, 3]
            if sa == 255 or al <= 0.0:
                o[k, 0] = s[k, 0]
                o[k, 1] = s[k, 1]
                o[k, 2] = s[k, 2]
                o[k, 3] = sa
                continue
            fs = sa / 255.0
            wl = al * (1.0 - fs)
            a = fs + wl
            inv = 1.0 / a
            o[k, 0] = np.uint8((s[k, 0] * fs + r * wl) * inv + 0.5)
            o[k, 1] = np.uint8((s[k, 1] * fs + g * wl) * inv + 0.5)
            o[k, 2] = np.uint8((s[k, 2] * fs + b * wl) * inv + 0.5)
            o[k, 3] = np.uint8(a * 255.0 + 0.5)


@kernel
def alpha_below(px, threshold, y0, y1, x0, x1, out):
    """``out = 255`` where alpha < threshold else 0 (uint8), inside the box: the outside of
    the subject. ``px``: the frame as packed pixels (``words``; alpha is the top byte). Row
    runs indexed from 0 and one word per pixel: the loop vectorises."""
    for i in range(y0, y1):
        s = px[i, x0:x1]
        o = out[i, x0:x1]
        for k in range(s.shape[0]):
            o[k] = 255 if (s[k] >> np.uint32(24)) < threshold else 0


@kernel
def alpha_at_least(px, threshold, y0, y1, x0, x1, out):
    """``out = 255`` where alpha >= threshold else 0 (uint8), inside the box: the subject
    (packed pixels, as ``alpha_below``)."""
    for i in range(y0, y1):
        s = px[i, x0:x1]
        o = out[i, x0:x1]
        for k in range(s.shape[0]):
            o[k] = 255 if (s[k] >> np.uint32(24)) >= threshold else 0


@kernel
def alpha_scaled(px, scale, y0, y1, x0, x1, out):
    """``out = alpha * scale`` as float32, inside the box (packed pixels, as ``alpha_below``)."""
    for i in range(y0, y1):
        s = px[i, x0:x1]
        o = out[i, x0:x1]
        for k in range(s.shape[0]):
            o[k] = np.float32(np.int32(s[k] >> np.uint32(24))) * scale


def warm() -> None:
    s = np.zeros((2, 2, 4), np.uint8)
    o = np.empty_like(s)
    subject_box(s)
    under(s, np.zeros((2, 2), np.float32), 0, 0, 0, False, 0, 2, 0, 2, o)
    px = words(s, np.uint32)
    alpha_below(px, 128, 0, 2, 0, 2, np.zeros((2, 2), np.uint8))
    alpha_at_least(px, 128, 0, 2, 0, 2, np.zeros((2, 2), np.uint8))
    alpha_scaled(px, np.float32(1), 0, 2, 0, 2, np.zeros((2, 2), np.float32))
