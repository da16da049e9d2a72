"""drop-shadow: a shadow cast from the alpha, composited under the subject."""
from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from keyer.effects import _composite
from keyer.effects.base import Geometry, param, register
from keyer.colour import parse_color

BAND = 64   # shadow rows made from one read of the alpha


def direction(angle_deg: float) -> tuple[float, float]:
    """Unit (dx, dy) in image coordinates for an After Effects direction: clockwise from up,
    so 0 = up, 90 = right, 135 = down-right, 180 = down."""
    a = math.radians(angle_deg)
    return math.sin(a), -math.cos(a)


@register("drop-shadow")
@dataclass(frozen=True, kw_only=True)
class DropShadow:
    """A shadow of the subject's alpha, offset and blurred, under the subject (After Effects
    defaults: black, 50 %, 135 degrees = down-right, 5 px, softness 0).

    Notes: shadow coverage = opacity * blur(shift(alpha, distance along angle)); subject over it.
    The offset is sampled bilinearly (cv2.warpAffine), so any angle and fractional distance work;
    blur is OpenCV's Gaussian (sigma = softness / 2), the fastest separable blur at hand. All of
    it runs on one box only: the subject's box united with the shadow's (the subject's box moved
    by the offset, grown by the bilinear footprint and the blur's radius). Both OpenCV calls see
    that box as their whole image; the translation does not change (source and destination
    share the box's origin) and the shadow is 0 at the box's edges, so the result is the
    full-frame one. The alpha is read ``BAND`` rows of the shadow at a time (with the rows the
    offset reaches), so only one map is the frame's size: each band's translation differs from
    the box's by whole rows, which OpenCV's fixed-point coordinates keep exactly.
    """

    color: str = param("black", help="shadow colour")
    opacity: float = param(0.5, lo=0, hi=1, help="shadow opacity")
    angle: float = param(135.0, lo=-360, hi=360, unit="deg", help="direction the shadow falls, clockwise from up")
    distance: float = param(5.0, lo=0, hi=1000, unit="px", help="offset of the shadow")
    softness: float = param(0.0, lo=0, hi=200, unit="px", help="blur radius")
    shadow_only: bool = param(False, help="output the shadow alone")

    def __post_init__(self) -> None:
        parse_color(self.color)

    def bind(self, g: Geometry) -> "DropShadowOp":
        dx, dy = direction(self.angle)
        return DropShadowOp(self, g, dx * self.distance, dy * self.distance)


class DropShadowOp:
    # written before they are read in every call (keyer.stages.share_scratch)
    scratch_arrays = ("alpha", "shifted")

    def __init__(self, spec: DropShadow, g: Geometry, dx: float, dy: float) -> None:
        self.spec = spec
        self.rgb = parse_color(spec.color)
        self.matrix = np.array([[1, 0, dx], [0, 1, dy]], np.float64)
        # a band of shadow rows reads the band's rows moved by the offset, and one either side
        rows = min(g.height, BAND + 3)
        self.alpha = np.zeros((rows, g.width), np.float32)
        self.shifted = np.zeros((g.height, g.width), np.float32)
        self.size = (g.width, g.height)
        self.sigma = spec.softness / 2.0
        # OpenCV's radius for a float32 Gaussian: ksize = round(sigma * 4 * 2 + 1) | 1
        radius = (int(round(self.sigma * 8 + 1)) | 1) // 2 if self.sigma > 0 else 0
        # how far the shadow reaches from the subject's box: offset, bilinear footprint, blur
        self.shift = (dx, dy)
        self.reach = 2 + radius

    def _box(self, box: tuple[int, int, int, int]) -> tuple[int, int, int, int]:
        """The subject's box united with the shadow's, clipped to the frame."""
        y0, y1, x0, x1 = box
        if y0 >= y1:
            return box
        dx, dy = self.shift
        w, h = self.size
        r = self.reach
        return (max(0, min(y0, math.floor(y0 + dy) - r)), min(h, max(y1, math.ceil(y1 + dy) + r)),
                max(0, min(x0, math.floor(x0 + dx) - r)), min(w, max(x1, math.ceil(x1 + dx) + r)))

    def __call__(self, src: np.ndarray, out: np.ndarray, t: float,
                 boxes: _composite.Boxes | None = None) -> None:
        box = self._box(_composite.find_subject(src, boxes))
        y0, y1, x0, x1 = box
        if y0 < y1:
            px = _composite.words(src, np.uint32)
            scale = np.float32(self.spec.opacity / 255.0)
            dy = self.shift[1]
            for b0 in range(y0, y1, BAND):
                b1 = min(b0 + BAND, y1)
                # the alpha rows that shadow rows b0..b1 sample (outside the box: 0, as before)
                a0, a1 = max(y0, math.floor(b0 - dy) - 1), min(y1, math.ceil(b1 - dy) + 1)
                if a0 < a1:
                    _composite.alpha_scaled(px[a0:a1], scale, 0, a1 - a0, x0, x1, self.alpha)
                alpha = self.alpha[:max(1, a1 - a0), x0:x1]
                if a0 >= a1:   # the band reads only rows outside the box: no shadow there
                    alpha[...] = 0
                matrix = self.matrix.copy()
                matrix[1, 2] += a0 - b0   # origins: alpha row a0, shadow row b0
                cv2.warpAffine(alpha, matrix, (x1 - x0, b1 - b0), dst=self.shifted[b0:b1, x0:x1],
                               flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                               borderValue=0)
            shifted = self.shifted[y0:y1, x0:x1]
            if self.sigma > 0:
                cv2.GaussianBlur(shifted, (0, 0), self.sigma, dst=shifted)
        r, g, b = self.rgb
        _composite.under(src, self.shifted, r, g, b, self.spec.shadow_only, *box, out)
        if self.spec.shadow_only:
            _composite.clear_outside(box, out, boxes)
        else:
            _composite.copy_outside(src, box, out, boxes)
        _composite.output_subject(out, box, boxes)

    def close(self) -> None:
        self.alpha = self.shifted = None


def warm() -> None:
    _composite.warm("subject_box", "alpha_scaled", "under")   # the shared kernels it runs
