"""Colour standards in one place, and decoded picture -> RGBA.

The matrices (Kr, Kb), the limited range's codes, FFmpeg's colour tags and the colour-name
parser live here; kernels get these values as arguments (``keyer.kernels``), never as literals.
Every output is BT.709, limited range (``BT709_LIMITED``), tagged so.

Decoding reads the stream's own matrix and range instead of assuming them: planar Y'CbCr
(4:2:0, 4:2:2, 4:4:4; 8 to 16 bit) goes through our own kernel, which upsamples chroma
bilinearly with the right siting. Anything else (NV12, RGB, palette, ...) is converted by
swscale with ``BILINEAR | FULL_CHR_H_INT | ACCURATE_RND`` and copied in.
"""
from __future__ import annotations

import re
from typing import NamedTuple

import numpy as np
from av.video.reformatter import Interpolation

from keyer import kernels
from keyer.errors import UsageProblem
from keyer.kernels import rgba as K

# --- Matrices: (Kr, Kb); Kg = 1 - Kr - Kb ---
BT709 = (0.2126, 0.0722)
BT601 = (0.299, 0.114)          # BT.470 BG and SMPTE 170M
SMPTE240M = (0.212, 0.087)
BT2020 = (0.2627, 0.0593)       # non-constant and constant luminance alike
FCC = (0.30, 0.11)
# per AVColorSpace value. Untagged streams: BT.709 for HD (height >= 720), BT.601 below.
MATRICES = {1: BT709, 4: FCC, 5: BT601, 6: BT601, 7: SMPTE240M, 9: BT2020, 10: BT2020}
LUMA709 = (BT709[0], 1.0 - BT709[0] - BT709[1], BT709[1])   # (Kr, Kg, Kb): 0.2126, 0.7152, 0.0722

# --- Range, in 8-bit codes (samples of more bits: times 2^(bits - 8)) ---
# limited ("tv", "MPEG") range: Y = 16 + 219 * Y' (Y' in 0..1), C = 128 + 224 * C' (C' in -0.5..0.5)
LIMITED = (16.0, 219.0, 128.0, 224.0)   # (Y' black, Y' span, C zero, C span)
Y_BLACK, Y_SPAN, C_ZERO, C_SPAN = LIMITED

# --- FFmpeg's colour tags (AVColorSpace, AVColorPrimaries, AVColorTransferCharacteristic,
# AVColorRange values) ---
SPACE_BT709 = 1
PRIMARIES_BT709 = 1
TRC_BT709 = 1
RANGE_LIMITED = 1   # AVCOL_RANGE_MPEG, "tv"
RANGE_FULL = 2      # AVCOL_RANGE_JPEG, "pc"

# What every output is (tagged with the BT.709 tags and RANGE_LIMITED): the colour tuple the
# kernels writing it take, (Kr, Kb, Y' black, Y' span, C zero, C span)
BT709_LIMITED = BT709 + LIMITED

# --- Colours by name or hex ---
NAMES = {
    "white": (255, 255, 255), "black": (0, 0, 0), "red": (255, 0, 0), "green": (0, 255, 0),
    "blue": (0, 0, 255), "yellow": (255, 255, 0), "cyan": (0, 255, 255),
    "magenta": (255, 0, 255), "grey": (128, 128, 128), "gray": (128, 128, 128),
    "orange": (255, 165, 0), "pink": (255, 192, 203), "purple": (128, 0, 128),
}
_HEX = re.compile(r"^(#|0x)?([0-9a-fA-F]{6})([0-9a-fA-F]{2})?$")


def parse_hex(text: str, strict: bool = False) -> tuple[int, int, int] | None:
    """``(r, g, b)`` of ``#RRGGBB`` or ``RRGGBB`` (any case, spaces around ignored), or None
    when ``text`` is not one. Unless ``strict``, also ``0xRRGGBB`` and a trailing alpha byte
    (``#RRGGBBAA``, ignored).

    >>> parse_hex("#00B140"), parse_hex("0x00b140"), parse_hex("0x00b140", strict=True)
    ((0, 177, 64), (0, 177, 64), None)
    """
    m = _HEX.match(str(text).strip().lower())
    if not m or (strict and (m.group(1) == "0x" or m.group(3) is not None)):
        return None
    v = int(m.group(2), 16)
    return ((v >> 16) & 255, (v >> 8) & 255, v & 255)


def parse_color(text: str) -> tuple[int, int, int]:
    """``"#ff8000"`` -> ``(255, 128, 0)``: ``#RRGGBB``, ``RRGGBB``, ``0xRRGGBB``, ``#RRGGBBAA``
    (alpha ignored) or a name (as in CSS, for the common ones). The one colour parser of
    effects and ``--background``; ``--key`` takes its strict hex (``parse_hex``).

    >>> parse_color("white"), parse_color("#00B140")
    ((255, 255, 255), (0, 177, 64))
    """
    t = str(text).strip().lower()
    if t in NAMES:
        return NAMES[t]
    rgb = parse_hex(t)
    if rgb is None:
        raise UsageProblem(f"{text!r} is not a colour (use #RRGGBB or a name like white)")
    return rgb


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
    return BT709 if height >= 720 else BT601


def plane_array(plane, dtype, width: int) -> np.ndarray:
    """A zero-copy (height, width) view of one plane of a decoded frame."""
    itemsize = np.dtype(dtype).itemsize
    arr = np.frombuffer(plane, dtype=dtype)
    return arr.reshape(plane.height, plane.line_size // itemsize)[:, :width]


class YCbCr(NamedTuple):
    """How to read one stream's planes: ``R = Y + rv*Cr``, ``G = Y - gu*Cb - gv*Cr``,
    ``B = Y + bu*Cb`` with Y, Cb, Cr normalised by ``(x - off) * scale`` to 0..255 and
    -127.5..127.5; chroma subsampled in x / y (``sx``, ``sy``); samples of ``dtype``.
    ``coefficients``: the eight float32 the kernels take."""

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

    @property
    def coefficients(self) -> tuple:
        """``(y_off, y_scale, c_off, c_scale, rv, gu, gv, bu)``: the kernels' reading constants."""
        return tuple(self[2:10])


def ycbcr(matrix: tuple[float, float], bits: int = 8, full: bool = False, sx: int = 1,
          sy: int = 1) -> YCbCr:
    """How to read planes of ``bits``-bit samples coded with ``matrix`` (Kr, Kb) in full or
    limited range, chroma subsampled in x / y (``sx``, ``sy``)."""
    s = float(1 << (bits - 8))
    maxv = float((1 << bits) - 1)
    if full:
        y_off, y_scale = 0.0, 255.0 / maxv
        c_off, c_scale = C_ZERO * s, 255.0 / maxv
    else:
        y_off, y_scale = Y_BLACK * s, 255.0 / (Y_SPAN * s)
        c_off, c_scale = C_ZERO * s, 255.0 / (C_SPAN * s)
    kr, kb = matrix
    kg = 1.0 - kr - kb
    rv = 2.0 * (1.0 - kr)
    bu = 2.0 * (1.0 - kb)
    f = np.float32
    return YCbCr(sx, sy, f(y_off), f(y_scale), f(c_off), f(c_scale), f(rv), f(bu * kb / kg),
                 f(rv * kr / kg), f(bu), np.dtype(np.uint8) if bits == 8 else np.dtype("<u2"))


def ycbcr_constants(frame) -> YCbCr | None:
    """The constants to read ``frame``'s planes with (its own matrix and range), or None when
    it is not planar Y'CbCr."""
    fmt = frame.format.name
    planar = _PLANAR.get(fmt)
    if planar is None:
        return None
    full = fmt.startswith("yuvj") or int(frame.color_range) == RANGE_FULL
    sx, sy, bits = planar
    return ycbcr(matrix_for(int(frame.colorspace), frame.height), bits, full, sx, sy)


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
        c = self._consts
        cw = (w + 1) >> 1 if c.sx else w
        dtype = c.dtype
        y = plane_array(frame.planes[0], dtype, w)
        u = plane_array(frame.planes[1], dtype, cw)
        v = plane_array(frame.planes[2], dtype, cw)
        if self._rows_for != (frame.height, cw):
            self._rows, self._rows_for = kernels.chroma_rows(frame.height, cw), (frame.height, cw)
        K.planes_to_rgba((y, u, v), (c.sx, c.sy), c.coefficients, self._rows, out)
