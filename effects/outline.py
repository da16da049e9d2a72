"""outline: the die-cut sticker border, a solid stroke around the alpha under the subject."""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from keyer.effects import _composite
from keyer.effects.base import Geometry, param, register
from keyer.colour import parse_color
from keyer._jit import kernel


@kernel
def stroke_coverage(dist, width, inv_soft, y0, y1, x0, x1, out):
    """Stroke coverage from the distance (px) to the subject, inside the box: 1 within
    ``width``, then a ``softness``-wide ramp: ``clip((width - dist) / softness + 0.5)``; hard
    when inv_soft = 0."""
    for i in range(y0, y1):
        d = dist[i, x0:x1]
        o = out[i, x0:x1]
        if inv_soft == 0.0:
            for k in range(d.shape[0]):
                o[k] = 1.0 if d[k] <= width else 0.0
        else:
            for k in range(d.shape[0]):
                v = (width - d[k]) * inv_soft + 0.5
                o[k] = 0.0 if v < 0.0 else (1.0 if v > 1.0 else v)


@register("outline")
@dataclass(frozen=True, kw_only=True)
class Outline:
    """A solid stroke around the subject's alpha, composited under it (a die-cut sticker edge).

    Notes: the stroke covers every pixel within ``width`` px (Euclidean, cv2.distanceTransform
    with the precise mask) of a pixel whose alpha is at least half; ``softness`` antialiases it.
    Only the subject's box grown by the stroke's reach is computed (the exact transform there
    sees every subject pixel, so distances are the full-frame ones); beyond, the source is
    copied.
    """

    width: float = param(8.0, lo=0, hi=500, unit="px", help="stroke width")
    color: str = param("white", help="stroke colour")
    softness: float = param(1.0, lo=0, hi=100, unit="px", help="width of the stroke's soft edge")

    def __post_init__(self) -> None:
        parse_color(self.color)

    def bind(self, g: Geometry) -> "OutlineOp":
        return OutlineOp(self, g)


class OutlineOp:
    # written before they are read in every call (keyer.stages.share_scratch)
    scratch_arrays = ("dist", "cover", "outside")

    def __init__(self, spec: Outline, g: Geometry) -> None:
        self.spec = spec
        self.rgb = parse_color(spec.color)
        self.outside = np.zeros((g.height, g.width), np.uint8)
        self.dist = np.zeros((g.height, g.width), np.float32)
        self.cover = np.zeros((g.height, g.width), np.float32)
        self.inv_soft = 1.0 / spec.softness if spec.softness > 0 else 0.0
        # coverage is 0 beyond width + softness / 2 from the subject
        self.reach = int(np.ceil(spec.width + 0.5 * spec.softness)) + 1

    def __call__(self, src: np.ndarray, out: np.ndarray, t: float,
                 boxes: _composite.Boxes | None = None) -> None:
        box = _composite.pad(_composite.find_subject(src, boxes), self.reach, src.shape[0],
                             src.shape[1])
        y0, y1, x0, x1 = box
        if y0 < y1:
            _composite.alpha_below(_composite.words(src, np.uint32), 128, *box, self.outside)
            cv2.distanceTransform(self.outside[y0:y1, x0:x1], cv2.DIST_L2, cv2.DIST_MASK_PRECISE,
                                  dst=self.dist[y0:y1, x0:x1])
            stroke_coverage(self.dist, np.float32(self.spec.width), np.float32(self.inv_soft),
                            *box, self.cover)
        r, g, b = self.rgb
        _composite.under(src, self.cover, r, g, b, False, *box, out)
        _composite.copy_outside(src, box, out, boxes)
        _composite.output_subject(out, box, boxes)

    def close(self) -> None:
        self.outside = self.dist = self.cover = None


def warm() -> None:
    _composite.warm("subject_box", "alpha_below", "under")   # the shared kernels it runs
    stroke_coverage(np.zeros((2, 2), np.float32), np.float32(1), np.float32(1), 0, 2, 0, 2,
                    np.zeros((2, 2), np.float32))
