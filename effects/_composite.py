"""Kernels shared by the effects: the subject's bounding box, what lies outside it, and the
flat-colour layer UNDER the subject (drop-shadow, outline).

Most of a keyed frame is transparent, so every effect finds the box of non-zero alpha once per
frame (:func:`find_subject`), pads it by its own reach (blur radius, displacement amount, shadow
offset) with :func:`pad`, works inside it only, and writes the rest with :func:`copy_outside` or
:func:`clear_outside` (what the full-frame computation gives there). Boxes are half-open
``(y0, y1, x0, x1)``; an empty box has ``y0 == y1``.

In a chain (``keyer.stages.EffectsStage``) a :class:`Boxes` carries what is already known from
one effect to the next: the subject's box (searched for once, then passed on or searched for
inside the box an effect wrote) and, per picture, a box outside which it is all zero. The copy
or clear outside an effect's box then covers only where the two pictures can differ, not the
whole frame. Without a ``Boxes`` (an effect called on its own) both are worked out in full.
"""
from __future__ import annotations

import numpy as np

from keyer._jit import kernel
from keyer.frame import EMPTY, Box, Boxes  # noqa: F401 (Boxes: the effects' annotations)

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
def alpha_box(px, y0, y1, x0, x1):
    """The half-open box ``(y0, y1, x0, x1)`` of the pixels whose alpha is not 0 within the box
    given (nothing outside it is read), ``(0, 0, 0, 0)`` when there are none; ``px`` is the
    frame as (H, W) uint32 (RGBA little-endian: alpha is the top byte).

    Rows above and below the box are read once; rows inside it only outside its current left
    and right edges, so a pass reads the transparent part of the frame at most.
    """
    top = y0
    left = x1
    while top < y1:
        left = _first(px, top, x0, x1)
        if left < x1:
            break
        top += 1
    if top == y1:
        return 0, 0, 0, 0
    bottom = y1 - 1
    right = _last(px, bottom, x0, x1)
    while right < x0:
        bottom -= 1
        right = _last(px, bottom, x0, x1)
    for i in range(top, bottom + 1):
        left = _first(px, i, x0, left)
        right = max(right, _last(px, i, right + 1, x1))
    return top, bottom + 1, left, right + 1


def words(pixels: np.ndarray, dtype) -> np.ndarray:
    """An (H, W, C) picture whose pixels are contiguous as (H, W) packed pixels of ``dtype``
    (one word per pixel: RGBA uint8 as uint32, RGBA uint16 as uint64; little-endian, channel
    0 lowest). Always a view (a reshape could copy, and writes would then be lost)."""
    return pixels.view(dtype)[..., 0]


def byte_rows(pixels: np.ndarray) -> np.ndarray:
    """An (H, W, C) uint8 picture as (H, W * C) rows of bytes: always a view (setting the shape
    of a view raises where a reshape would copy). Kernels take rows this way rather than
    reshaping inside (which makes loading them import numba's array library: start-up)."""
    rows = pixels.view()
    rows.shape = (pixels.shape[0], pixels.shape[1] * pixels.shape[2])
    return rows


def subject_box(src: np.ndarray, within: Box | None = None) -> Box:
    """The box of non-zero alpha of an (H, W, 4) uint8 C-contiguous RGBA frame, searched for
    ``within`` a box only (None: the whole frame) when alpha is known to be 0 beyond it."""
    y0, y1, x0, x1 = (0, src.shape[0], 0, src.shape[1]) if within is None else within
    if y0 >= y1:
        return EMPTY
    return alpha_box(words(src, np.uint32), y0, y1, x0, x1)


def pad(box: Box, reach: int, h: int, w: int) -> Box:
    """``box`` grown by ``reach`` px on every side, clipped to the (h, w) frame; empty stays empty."""
    y0, y1, x0, x1 = box
    if y0 >= y1:
        return box
    return max(0, y0 - reach), min(h, y1 + reach), max(0, x0 - reach), min(w, x1 + reach)


def hull(a: Box | None, b: Box | None) -> Box | None:
    """The smallest box holding both; None (the whole frame) if either is None."""
    if a is None or b is None:
        return None
    if a[0] >= a[1]:
        return b
    if b[0] >= b[1]:
        return a
    return min(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), max(a[3], b[3])


def find_subject(src: np.ndarray, boxes: Boxes | None) -> Box:
    """src's box of non-zero alpha: as ``boxes`` knows it, else searched for (within
    ``boxes.src`` when known) and noted there."""
    if boxes is None:
        return subject_box(src)
    if boxes.alpha is None:
        boxes.alpha = subject_box(src, boxes.src)
    return boxes.alpha


def output_subject(out: np.ndarray, box: Box, boxes: Boxes | None) -> None:
    """Note the output's box of non-zero alpha for the next effect, for an effect that moves or
    adds alpha only inside ``box`` (its output's alpha is 0 beyond)."""
    if boxes is not None:
        boxes.alpha = subject_box(out, box)


def _frame(a: np.ndarray, box: Box | None) -> Box:
    return (0, a.shape[0], 0, a.shape[1]) if box is None else box


def _outside(region: Box, box: Box) -> list[tuple[slice, slice]]:
    """The part of ``region`` outside ``box`` as up to four (rows, columns) slices."""
    ry0, ry1, rx0, rx1 = region
    if ry0 >= ry1 or rx0 >= rx1:
        return []
    y0, y1, x0, x1 = box
    if y0 >= y1:
        return [(slice(ry0, ry1), slice(rx0, rx1))]
    top = min(max(y0, ry0), ry1)          # the box clipped to the region
    bottom = max(min(y1, ry1), top)
    left = min(max(x0, rx0), rx1)
    right = max(min(x1, rx1), left)
    cols = slice(rx0, rx1)
    return [(slice(ry0, top), cols), (slice(bottom, ry1), cols),
            (slice(top, bottom), slice(rx0, left)), (slice(top, bottom), slice(right, rx1))]


def copy_outside(src: np.ndarray, box: Box, out: np.ndarray, boxes: Boxes | None = None) -> None:
    """``out = src`` outside the box; the box itself is not touched. With ``boxes``, only where
    src or out's old content can be non-zero (beyond, both are 0), and ``boxes.out`` becomes
    the box outside which ``out`` is now 0. (NumPy slice copies: row spans are memcpy, several
    times faster than a Numba loop over bytes.)"""
    region = _frame(out, None if boxes is None else hull(boxes.src, boxes.out))
    for rows, cols in _outside(region, box):
        out[rows, cols] = src[rows, cols]
    if boxes is not None:
        boxes.out = hull(boxes.src, box)


def clear_outside(box: Box, out: np.ndarray, boxes: Boxes | None = None) -> None:
    """``out = 0`` (transparent black) outside the box; the box itself is not touched. With
    ``boxes``, only where out's old content can be non-zero, and ``boxes.out`` becomes ``box``."""
    region = _frame(out, None if boxes is None else boxes.out)
    for rows, cols in _outside(region, box):
        out[rows, cols] = 0
    if boxes is not None:
        boxes.out = box


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


def warm(*names: str) -> None:
    """Load the kernels ``names`` (``subject_box``, ``under``, ``alpha_below``,
    ``alpha_at_least``, ``alpha_scaled``; all of them without names) on tiny arrays of the real
    dtypes. Each effect's own ``warm`` names those it runs: each loaded kernel costs the job
    0.2-1.3 MB of compiled code."""
    s = np.zeros((2, 2, 4), np.uint8)
    px = words(s, np.uint32)
    calls = {
        "subject_box": lambda: subject_box(s),
        "under": lambda: under(s, np.zeros((2, 2), np.float32), 0, 0, 0, False, 0, 2, 0, 2,
                               np.empty_like(s)),
        "alpha_below": lambda: alpha_below(px, 128, 0, 2, 0, 2, np.zeros((2, 2), np.uint8)),
        "alpha_at_least": lambda: alpha_at_least(px, 128, 0, 2, 0, 2, np.zeros((2, 2), np.uint8)),
        "alpha_scaled": lambda: alpha_scaled(px, np.float32(1), 0, 2, 0, 2,
                                             np.zeros((2, 2), np.float32)),
    }
    for name in names or calls:
        calls[name]()
