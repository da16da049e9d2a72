"""Decoded picture -> RGBA: reads the stream's matrix and range instead of assuming them.

Planar Y'CbCr (4:2:0, 4:2:2, 4:4:4; 8 to 16 bit) goes through our own kernel, which upsamples
chroma bilinearly with the right siting. Anything else (NV12, RGB, palette, ...) is converted by
swscale with ``BILINEAR | FULL_CHR_H_INT | ACCURATE_RND`` and copied in.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np
from av.video.reformatter import Interpolation

from keyer import _key_kernels as K

# (Kr, Kb) per matrix. Untagged streams: BT.709 for HD (height >= 720), BT.601 below.
MATRICES = {1: (0.2126, 0.0722), 5: (0.299, 0.114), 6: (0.299, 0.114), 7: (0.212, 0.087),
            9: (0.2627, 0.0593), 10: (0.2627, 0.0593), 4: (0.30, 0.11)}
SWS_FLAGS = Interpolation.BILINEAR | Interpolation.FULL_CHR_H_INT | Interpolation.ACCURATE_RND

# pix_fmt -> (chroma subsampled in x, in y, bits)
_PLANAR = {}
for _bits, _suffix in ((8, ""), (9, "9le"), (10, "10le"), (12, "12le"), (14, "14le"), (16, "16le")):
    for _name, _sx, _sy in (("yuv420p", 1, 1), ("yuv422p", 1, 0), ("yuv444p", 0, 0)):
        _PLANAR[_name + _suffix] = (_sx, _sy, _bits)
for _name, _sx, _sy in (("yuvj420p", 1, 1), ("yuvj422p", 1, 0), ("yuvj444p", 0, 0)):
    _PLANAR[_name] = (_sx, _sy, 8)


def matrix_for(colorspace: int, height: int) -> tuple[float, float]:
    """(Kr, Kb) for an AVColorSpace value; untagged means BT.709 for HD, BT.601 for SD."""
    if colorspace in MATRICES:
        return MATRICES[colorspace]
    return MATRICES[1] if height >= 720 else MATRICES[5]


def plane_array(plane, dtype, width: int) -> np.ndarray:
    """A zero-copy (height, width) view of one plane of a decoded frame."""
    itemsize = np.dtype(dtype).itemsize
    arr = np.frombuffer(plane, dtype=dtype)
    return arr.reshape(plane.height, plane.line_size // itemsize)[:, :width]


class YCbCr(NamedTuple):
    """How to read one stream's planes: ``R = Y + rv*Cr``, ``G = Y - gu*Cb - gv*Cr``,
    ``B = Y + bu*Cb`` with Y, Cb, Cr normalised by ``(x - off) * scale`` to 0..255 and
    -127.5..127.5; chroma subsampled in x / y (``sx``, ``sy``); samples of ``dtype``."""

    sx: int
    sy: int
    y_off: np.float32
    y_scale: np.float32
    c_off: np.float32
    c_scale: np.float32
    rv: np.float32
    gu: np.float32
    gv: np.float32
    bu: np.float32
    dtype: np.dtype


def ycbcr_constants(frame) -> YCbCr | None:
    """The constants to read ``frame``'s planes with (its own matrix and range), or None when
    it is not planar Y'CbCr."""
    fmt = frame.format.name
    planar = _PLANAR.get(fmt)
    if planar is None:
        return None
    full = fmt.startswith("yuvj") or int(frame.color_range) == 2
    sx, sy, bits = planar
    s = float(1 << (bits - 8))
    maxv = float((1 << bits) - 1)
    if full:
        y_off, y_scale = 0.0, 255.0 / maxv
        c_off, c_scale = 128.0 * s, 255.0 / maxv
    else:
        y_off, y_scale = 16.0 * s, 255.0 / (219.0 * s)
        c_off, c_scale = 128.0 * s, 255.0 / (224.0 * s)
    kr, kb = matrix_for(int(frame.colorspace), frame.height)
    kg = 1.0 - kr - kb
    rv = 2.0 * (1.0 - kr)
    bu = 2.0 * (1.0 - kb)
    f = np.float32
    return YCbCr(sx, sy, f(y_off), f(y_scale), f(c_off), f(c_scale), f(rv), f(bu * kb / kg),
                 f(rv * kr / kg), f(bu), np.dtype(np.uint8) if bits == 8 else np.dtype("<u2"))


class ToRGBA:
    """Converts decoded frames of one stream to RGBA in a caller's buffer."""

    def __init__(self) -> None:
        self._key = None
        self._consts = None
        self._rows = None    # planes_to_rgba's row buffers, made for _rows_for = (height, cw)
        self._rows_for = None

    def _setup(self, frame) -> None:
        self._key = (frame.format.name, int(frame.colorspace), int(frame.color_range))
        self._consts = ycbcr_constants(frame)

    def __call__(self, frame, out: np.ndarray) -> None:
        """Write ``frame`` (an av.VideoFrame, coded orientation) into ``out`` (H, W, 4) uint8."""
        if self._key != (frame.format.name, int(frame.colorspace), int(frame.color_range)):
            self._setup(frame)
        w = frame.width
        if self._consts is None:
            rgb = frame.reformat(format="rgb24", interpolation=SWS_FLAGS,
                                 src_color_range=frame.color_range or None).to_ndarray()
            K.rgb_to_rgba(rgb, out)
            return
        sx, sy, y_off, y_scale, c_off, c_scale, rv, gu, gv, bu, dtype = self._consts
        cw = (w + 1) >> 1 if sx else w
        y = plane_array(frame.planes[0], dtype, w)
        u = plane_array(frame.planes[1], dtype, cw)
        v = plane_array(frame.planes[2], dtype, cw)
        if self._rows_for != (frame.height, cw):
            self._rows, self._rows_for = K.chroma_rows(frame.height, cw), (frame.height, cw)
        K.planes_to_rgba(y, u, v, sx, sy, y_off, y_scale, c_off, c_scale, rv, gu, gv, bu,
                         self._rows, out)
