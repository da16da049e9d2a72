"""alpha-bevel: a bevelled edge lit from one side, derived from the alpha (like AE Bevel Alpha)."""
from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from keyer.effects import _composite
from keyer.effects.base import Geometry, param, register
from keyer.colour import parse_color
from keyer._jit import kernel

RING = 3   # px of background kept around the subject's box for the distance transform


@kernel
def bevel_kernel(src, dist, thickness, lx, ly, intensity, cr, cg, cb, y0, y1, x0, x1, out):
    """Shade the edge band by the slope of ``h = min(dist, thickness) / thickness``, inside the
    box.

    The surface normal is ``(-dh/dx, -dh/dy)`` (pointing out of the subject); ``shade =
    n . light`` with the light direction (lx, ly) pointing towards the light. shade > 0 mixes
    the light colour in (``c += (light - c) * shade * intensity``), shade < 0 darkens
    (``c *= 1 + shade * intensity``). Only shaded pixels are written: ``out`` holds a copy of
    ``src`` (a memcpy is 3x cheaper than copying pixel by pixel here), so pixels whose 3x3
    neighbourhood is all beyond ``thickness`` stay exactly as they were.
    """
    h, w = dist.shape
    for i in range(y0, y1):
        i0 = i - 1 if i > 0 else i
        i1 = i + 1 if i < h - 1 else i
        for j in range(x0, x1):
            if src[i, j, 3] == 0 or dist[i, j] > thickness + 1.5:
                continue
            j0 = j - 1 if j > 0 else j
            j1 = j + 1 if j < w - 1 else j
            hx = (min(dist[i, j1], thickness) - min(dist[i, j0], thickness)) / (thickness * (j1 - j0 if j1 > j0 else 1))
            hy = (min(dist[i1, j], thickness) - min(dist[i0, j], thickness)) / (thickness * (i1 - i0 if i1 > i0 else 1))
            if hx == 0.0 and hy == 0.0:
                continue
            nx = -hx
            ny = -hy
            norm = math.sqrt(nx * nx + ny * ny)
            s = (nx * lx + ny * ly) / norm * min(1.0, norm * thickness) * intensity
            if s > 0.0:
                out[i, j, 0] = np.uint8(src[i, j, 0] + (cr - src[i, j, 0]) * s + 0.5)
                out[i, j, 1] = np.uint8(src[i, j, 1] + (cg - src[i, j, 1]) * s + 0.5)
                out[i, j, 2] = np.uint8(src[i, j, 2] + (cb - src[i, j, 2]) * s + 0.5)
            else:
                k = 1.0 + s
                out[i, j, 0] = np.uint8(src[i, j, 0] * k + 0.5)
                out[i, j, 1] = np.uint8(src[i, j, 1] * k + 0.5)
                out[i, j, 2] = np.uint8(src[i, j, 2] * k + 0.5)


def light_vector(angle_deg: float) -> tuple[float, float]:
    """Unit vector towards the light in image coordinates; angle clockwise from up (AE)."""
    a = math.radians(angle_deg)
    return math.sin(a), -math.cos(a)


@register("alpha-bevel")
@dataclass(frozen=True, kw_only=True)
class AlphaBevel:
    """A bevelled edge from the alpha: highlight where the edge faces the light, shadow where it
    faces away; the interior beyond ``thickness`` is exactly unchanged.

    Notes: the height is a distance-from-edge ramp (cv2.distanceTransform of alpha >= 128, one
    pass, not repeated erosions), clipped at ``thickness``. Only the subject's box is shaded;
    the distance is computed on the box grown by ``RING`` px of background, which gives the
    same distances as the whole frame (every path to the subject's edge crosses that ring).
    """

    thickness: float = param(5.0, lo=0.5, hi=200, unit="px", help="width of the bevel")
    angle: float = param(315.0, lo=-360, hi=360, unit="deg", help="where the light comes from, clockwise from up")
    intensity: float = param(0.6, lo=0, hi=1, help="strength of highlight and shadow")
    color: str = param("white", help="colour of the light")

    def __post_init__(self) -> None:
        parse_color(self.color)

    def bind(self, g: Geometry) -> "AlphaBevelOp":
        return AlphaBevelOp(self, g)


class AlphaBevelOp:
    # written before they are read in every call (keyer.stages.share_scratch)
    scratch_arrays = ("dist", "inside")

    def __init__(self, spec: AlphaBevel, g: Geometry) -> None:
        self.spec = spec
        self.inside = np.zeros((g.height, g.width), np.uint8)
        self.dist = np.zeros((g.height, g.width), np.float32)
        self.light = light_vector(spec.angle)
        self.rgb = parse_color(spec.color)

    def __call__(self, src: np.ndarray, out: np.ndarray, t: float,
                 boxes: _composite.Boxes | None = None) -> None:
        box = _composite.find_subject(src, boxes)
        if box[0] < box[1]:
            y0, y1, x0, x1 = ring = _composite.pad(box, RING, src.shape[0], src.shape[1])
            _composite.alpha_at_least(_composite.words(src, np.uint32), 128, *ring, self.inside)
            cv2.distanceTransform(self.inside[y0:y1, x0:x1], cv2.DIST_L2, cv2.DIST_MASK_5,
                                  dst=self.dist[y0:y1, x0:x1])
        lx, ly = self.light
        r, g, b = self.rgb
        _composite.copy_outside(src, _composite.EMPTY, out, boxes)   # all of it
        bevel_kernel(src, self.dist, np.float32(self.spec.thickness), lx, ly,
                     self.spec.intensity, r, g, b, *box, out)

    def close(self) -> None:
        self.inside = self.dist = None


def warm() -> None:
    _composite.warm("subject_box", "alpha_at_least")   # the shared kernels it runs
    s = np.zeros((3, 3, 4), np.uint8)
    bevel_kernel(s, np.zeros((3, 3), np.float32), np.float32(2), 0.5, 0.5, 0.5, 255, 255, 255,
                 0, 3, 0, 3, np.empty_like(s))
