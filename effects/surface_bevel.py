"""surface-bevel: relief lighting across the subject's surface from a height map."""
from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from effects.base import Geometry, param, register
from effects.textures import check_texture, load_rgb
from keyer._jit import kernel_parallel, prange


@kernel_parallel
def luma_plane(src, out):
    """BT.709 luma of RGBA in 0..1 (float32)."""
    h, w = src.shape[0], src.shape[1]
    for i in prange(h):
        for j in range(w):
            out[i, j] = (0.2126 * src[i, j, 0] + 0.7152 * src[i, j, 1] + 0.0722 * src[i, j, 2]) / 255.0


@kernel_parallel
def relief_kernel(src, height, depth, lx, ly, lz, highlight, shadow, out):
    """Lambert shading of the height field relative to a flat surface, inside the alpha only.

    ``n = normalize(-depth * dh/dx, -depth * dh/dy, 1)``; ``s = n . L - L.z`` (0 when flat);
    s > 0 brightens towards white by ``s * highlight``, s < 0 darkens by ``s * shadow``. Alpha is
    copied; a flat height field changes nothing.
    """
    h, w = height.shape
    for ii in prange(h):
        i = np.int64(ii)  # prange's index may be unsigned: keep neighbour arithmetic signed
        for j in range(w):
            out[i, j, 3] = src[i, j, 3]
            i0 = i - 1 if i > 0 else i
            i1 = i + 1 if i < h - 1 else i
            j0 = j - 1 if j > 0 else j
            j1 = j + 1 if j < w - 1 else j
            gx = (height[i, j1] - height[i, j0]) * depth
            gy = (height[i1, j] - height[i0, j]) * depth
            s = (-gx * lx - gy * ly + lz) / math.sqrt(gx * gx + gy * gy + 1.0) - lz
            if src[i, j, 3] == 0 or s == 0.0:
                out[i, j, 0] = src[i, j, 0]
                out[i, j, 1] = src[i, j, 1]
                out[i, j, 2] = src[i, j, 2]
            elif s > 0.0:
                k = s * highlight
                if k > 1.0:
                    k = 1.0
                for c in range(3):
                    out[i, j, c] = np.uint8(src[i, j, c] + (255.0 - src[i, j, c]) * k + 0.5)
            else:
                k = 1.0 + s * shadow
                if k < 0.0:
                    k = 0.0
                for c in range(3):
                    out[i, j, c] = np.uint8(src[i, j, c] * k + 0.5)


@register("surface-bevel")
@dataclass(frozen=True, kw_only=True)
class SurfaceBevel:
    """Relief lighting of the subject's surface from a height map (the frame's luminance or a
    texture); alpha and flat areas unchanged.

    Notes: the height is smoothed once with OpenCV's Gaussian (sigma 1 px) so pixel noise does
    not become relief.
    """

    height: str = param("luma", help="'luma' (the frame's luminance) or an image path")
    depth: float = param(4.0, lo=0, hi=100, help="relief strength (height units per px)")
    angle: float = param(315.0, lo=-360, hi=360, unit="deg", help="where the light comes from, clockwise from up")
    altitude: float = param(45.0, lo=1, hi=90, unit="deg", help="light elevation above the surface")
    highlight: float = param(0.5, lo=0, hi=1, help="highlight opacity")
    shadow: float = param(0.5, lo=0, hi=1, help="shadow opacity")

    def __post_init__(self) -> None:
        check_texture("surface-bevel", "height", self.height, ("luma",))

    def bind(self, g: Geometry) -> "SurfaceBevelOp":
        return SurfaceBevelOp(self, g)


class SurfaceBevelOp:
    def __init__(self, spec: SurfaceBevel, g: Geometry) -> None:
        self.spec = spec
        az, alt = math.radians(spec.angle), math.radians(spec.altitude)
        self.light = (math.cos(alt) * math.sin(az), -math.cos(alt) * math.cos(az), math.sin(alt))
        self.height = np.zeros((g.height, g.width), np.float32)
        self.static = spec.height != "luma"
        if self.static:
            tex = load_rgb(spec.height, g.width, g.height, "stretch").astype(np.float32)
            h = (tex @ np.array([0.2126, 0.7152, 0.0722], np.float32)) / 255.0
            cv2.GaussianBlur(np.ascontiguousarray(h), (0, 0), 1.0, dst=self.height)

    def __call__(self, src: np.ndarray, out: np.ndarray, t: float) -> None:
        if not self.static:
            luma_plane(src, self.height)
            cv2.GaussianBlur(self.height, (0, 0), 1.0, dst=self.height)
        lx, ly, lz = self.light
        s = self.spec
        relief_kernel(src, self.height, np.float32(s.depth), lx, ly, lz, s.highlight, s.shadow, out)

    def close(self) -> None:
        self.height = None


def warm() -> None:
    s = np.zeros((3, 3, 4), np.uint8)
    hgt = np.zeros((3, 3), np.float32)
    luma_plane(s, hgt)
    relief_kernel(s, hgt, np.float32(1), 0.5, 0.5, 0.7, 0.5, 0.5, np.empty_like(s))
