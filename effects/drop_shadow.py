"""drop-shadow: a shadow cast from the alpha, composited under the subject."""
from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from effects import _composite
from effects.base import Geometry, param, register
from effects.colors import parse_color

KERNEL_DEPS = (_composite,)   # kernels this effect runs from other modules


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
    blur is OpenCV's Gaussian (sigma = softness / 2), the fastest separable blur at hand.
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
    def __init__(self, spec: DropShadow, g: Geometry, dx: float, dy: float) -> None:
        self.spec = spec
        self.rgb = parse_color(spec.color)
        self.matrix = np.array([[1, 0, dx], [0, 1, dy]], np.float64)
        self.alpha = np.zeros((g.height, g.width), np.float32)
        self.shifted = np.zeros((g.height, g.width), np.float32)
        self.size = (g.width, g.height)
        self.sigma = spec.softness / 2.0

    def __call__(self, src: np.ndarray, out: np.ndarray, t: float) -> None:
        _composite.alpha_scaled(src, np.float32(self.spec.opacity / 255.0), self.alpha)
        cv2.warpAffine(self.alpha, self.matrix, self.size, dst=self.shifted, flags=cv2.INTER_LINEAR,
                       borderMode=cv2.BORDER_CONSTANT, borderValue=0)
        if self.sigma > 0:
            cv2.GaussianBlur(self.shifted, (0, 0), self.sigma, dst=self.shifted)
        r, g, b = self.rgb
        _composite.under(src, self.shifted, r, g, b, self.spec.shadow_only, out)

    def close(self) -> None:
        self.alpha = self.shifted = None
