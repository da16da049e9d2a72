"""outline: the die-cut sticker border, a solid stroke around the alpha under the subject."""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from effects import _composite
from effects.base import Geometry, param, register
from effects.colors import parse_color
from keyer._jit import kernel_parallel, prange

KERNEL_DEPS = (_composite,)   # kernels this effect runs from other modules


@kernel_parallel
def stroke_coverage(dist, width, inv_soft, out):
    """Stroke coverage from the distance (px) to the subject: 1 within ``width``, then a
    ``softness``-wide ramp: ``clip((width - dist) / softness + 0.5)``; hard when inv_soft = 0."""
    h, w = dist.shape
    for i in prange(h):
        for j in range(w):
            d = dist[i, j]
            if inv_soft == 0.0:
                out[i, j] = 1.0 if d <= width else 0.0
            else:
                v = (width - d) * inv_soft + 0.5
                out[i, j] = 0.0 if v < 0.0 else (1.0 if v > 1.0 else v)


@register("outline")
@dataclass(frozen=True, kw_only=True)
class Outline:
    """A solid stroke around the subject's alpha, composited under it (a die-cut sticker edge).

    Notes: the stroke covers every pixel within ``width`` px (Euclidean, cv2.distanceTransform
    with the precise mask) of a pixel whose alpha is at least half; ``softness`` antialiases it.
    """

    width: float = param(8.0, lo=0, hi=500, unit="px", help="stroke width")
    color: str = param("white", help="stroke colour")
    softness: float = param(1.0, lo=0, hi=100, unit="px", help="width of the stroke's soft edge")

    def __post_init__(self) -> None:
        parse_color(self.color)

    def bind(self, g: Geometry) -> "OutlineOp":
        return OutlineOp(self, g)


class OutlineOp:
    def __init__(self, spec: Outline, g: Geometry) -> None:
        self.spec = spec
        self.rgb = parse_color(spec.color)
        self.outside = np.zeros((g.height, g.width), np.uint8)
        self.dist = np.zeros((g.height, g.width), np.float32)
        self.cover = np.zeros((g.height, g.width), np.float32)
        self.inv_soft = 1.0 / spec.softness if spec.softness > 0 else 0.0

    def __call__(self, src: np.ndarray, out: np.ndarray, t: float) -> None:
        _composite.alpha_below(src, 128, self.outside)
        cv2.distanceTransform(self.outside, cv2.DIST_L2, cv2.DIST_MASK_PRECISE, dst=self.dist)
        stroke_coverage(self.dist, np.float32(self.spec.width), np.float32(self.inv_soft), self.cover)
        r, g, b = self.rgb
        _composite.under(src, self.cover, r, g, b, False, out)

    def close(self) -> None:
        self.outside = self.dist = self.cover = None


def warm() -> None:
    stroke_coverage(np.zeros((2, 2), np.float32), np.float32(1), np.float32(1), np.zeros((2, 2), np.float32))
