"""RGBA frames for the animated-image encoders: WebP (BGRA), APNG (RGBA) and GIF (a palette).

Every converter first gives fully transparent pixels one colour (zero), so the encoders spend
no bits on the screen's leftover colour. The GIF palette is fixed (6 x 7 x 6 levels of R, G, B:
252 colours at indices 1..252, index 0 transparent: FFmpeg's GIF encoder keeps a transparent
entry only at index 0 (measured: at 255 the background came back opaque black)) and reached through an 8 x 8 ordered (Bayer) dither: the
same colour dithers the same way in every frame, so still areas stay still (no crawling noise,
which also keeps the GIF encoder's changed-rectangle small), and it needs no pass over the clip
to build a palette. Alpha is 1-bit: below 128 transparent, else opaque.
"""
from __future__ import annotations

import av
import cv2
import numpy as np

from keyer.kernels import encode as EK

LEVELS = (6, 7, 6)     # R, G, B levels of the GIF palette: 252 colours
TRANSPARENT = 0        # the GIF palette's transparent index

_BAYER = np.array([[0, 32, 8, 40, 2, 34, 10, 42], [48, 16, 56, 24, 50, 18, 58, 26],
                   [12, 44, 4, 36, 14, 46, 6, 38], [60, 28, 52, 20, 62, 30, 54, 22],
                   [3, 35, 11, 43, 1, 33, 9, 41], [51, 19, 59, 27, 49, 17, 57, 25],
                   [15, 47, 7, 39, 13, 45, 5, 37], [63, 31, 55, 23, 61, 29, 53, 21]],
                  np.float32) / 64.0 + 1 / 128.0


def gif_palette() -> np.ndarray:
    """(256, 4) uint8 rows (A, R, G, B), the order PyAV's ``from_ndarray(..., "pal8")`` reads
    (measured: a row (10, 20, 30, 200) comes back as RGBA (20, 30, 200, 10)); entry 0 fully
    transparent, the unused entries after the colours opaque black."""
    nr, ng, nb = LEVELS
    pal = np.zeros((256, 4), np.uint8)
    pal[:, 0] = 255
    r, g, b = np.meshgrid(np.arange(nr), np.arange(ng), np.arange(nb), indexing="ij")
    n = nr * ng * nb
    pal[1:n + 1, 1] = np.round(r.ravel() * 255 / (nr - 1))
    pal[1:n + 1, 2] = np.round(g.ravel() * 255 / (ng - 1))
    pal[1:n + 1, 3] = np.round(b.ravel() * 255 / (nb - 1))
    pal[TRANSPARENT] = 0
    return pal


PALETTE = gif_palette()


def gif_indices(rgba: np.ndarray) -> np.ndarray:
    """(H, W) palette indices of an RGBA frame: ordered dither onto ``PALETTE``, alpha < 128 ->
    ``TRANSPARENT``."""
    h, w = rgba.shape[:2]
    thr = np.tile(_BAYER, (-(-h // 8), -(-w // 8)))[:h, :w]
    idx = np.zeros((h, w), np.int32)   # the colour's number, 0..251; its entry is one more
    for c, n in enumerate(LEVELS):
        q = np.floor(rgba[..., c].astype(np.float32) * ((n - 1) / 255.0) + thr)
        idx = idx * n + np.clip(q, 0, n - 1).astype(np.int32)
    idx += 1
    idx[rgba[..., 3] < 128] = TRANSPARENT
    return idx.astype(np.uint8)


class AnimatedFrames:
    """Makes the encoder's frame from a keyed RGBA frame for ``pix_fmt`` (rgba, bgra or pal8),
    reusing one scratch buffer of the frame's size."""

    def __init__(self, pix_fmt: str) -> None:
        self.pix_fmt = pix_fmt
        self.buf: np.ndarray | None = None

    def __call__(self, rgba: np.ndarray) -> av.VideoFrame:
        if self.buf is None or self.buf.shape != rgba.shape:
            self.buf = np.empty(rgba.shape, np.uint8)
        EK.zero_transparent(np.ascontiguousarray(rgba), self.buf)
        if self.pix_fmt == "pal8":
            return av.VideoFrame.from_ndarray((gif_indices(self.buf), PALETTE), format="pal8")
        if self.pix_fmt == "bgra":
            cv2.cvtColor(self.buf, cv2.COLOR_RGBA2BGRA, dst=self.buf)
        return av.VideoFrame.from_ndarray(self.buf, format=self.pix_fmt)
