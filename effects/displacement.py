"""displacement: shift pixels (colour and alpha together) by a map, like AE's Displacement Map."""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from effects.base import Geometry, param, register
from effects.textures import check_texture, load_rgb, smooth_noise
from keyer._jit import kernel_parallel, prange

EDGES = {"transparent": cv2.BORDER_CONSTANT, "wrap": cv2.BORDER_WRAP, "clamp": cv2.BORDER_REPLICATE}
KEYFRAMES = 4      # noise maps the animated map cycles through


@kernel_parallel
def premultiply(src, out):
    """RGBA uint8 straight -> uint16 premultiplied: ``(c * a, a * 255)``."""
    h, w = src.shape[0], src.shape[1]
    for i in prange(h):
        for j in range(w):
            a = np.uint16(src[i, j, 3])
            out[i, j, 0] = np.uint16(src[i, j, 0]) * a
            out[i, j, 1] = np.uint16(src[i, j, 1]) * a
            out[i, j, 2] = np.uint16(src[i, j, 2]) * a
            out[i, j, 3] = a * np.uint16(255)


@kernel_parallel
def unpremultiply(pm, out):
    """uint16 premultiplied -> RGBA uint8 straight (colour 0 where alpha is 0)."""
    h, w = pm.shape[0], pm.shape[1]
    for i in prange(h):
        for j in range(w):
            a = pm[i, j, 3]
            if a < 128:
                out[i, j, 0] = 0
                out[i, j, 1] = 0
                out[i, j, 2] = 0
                out[i, j, 3] = 0
                continue
            inv = np.float32(255.0) / a
            for c in range(3):
                v = pm[i, j, c] * inv
                out[i, j, c] = 255 if v >= 254.5 else np.uint8(v + 0.5)
            out[i, j, 3] = np.uint8(a / np.float32(255.0) + np.float32(0.5))


@kernel_parallel
def make_maps(dx, dy, ax, ay, map_x, map_y):
    """``map = identity + amount * field`` (fields in -1..1)."""
    h, w = dx.shape
    for i in prange(h):
        for j in range(w):
            map_x[i, j] = j + ax * dx[i, j]
            map_y[i, j] = i + ay * dy[i, j]


@register("displacement")
@dataclass(frozen=True, kw_only=True)
class Displacement:
    """Shift pixels by a displacement map: a wobbly, hand-cut, "boiling" edge.

    Notes: the map's red/green (or two smooth noise fields) in -1..1 scale ``amount`` px in x/y.
    Sampling is bilinear on premultiplied RGBA (cv2.remap on uint16), so edges pick up no dark
    or green fringe. ``speed`` > 0 drifts the noise through ``KEYFRAMES`` fields per cycle.
    """

    amount: float = param(5.0, lo=0, hi=500, unit="px", help="largest displacement")
    amount_x: float = param(-1.0, lo=-1, hi=500, unit="px", help="x displacement (-1 = amount)")
    amount_y: float = param(-1.0, lo=-1, hi=500, unit="px", help="y displacement (-1 = amount)")
    map: str = param("noise", help="'noise' or an image path (R = x, G = y, 128 = none)")
    scale: float = param(24.0, lo=2, hi=2000, unit="px", help="feature size of the noise")
    speed: float = param(2.0, lo=0, hi=60, unit="1/s", help="noise changes per second (0 = static)")
    seed: int = param(1, lo=0, hi=2**31 - 1, help="noise seed")
    edge: str = param("transparent", choices=tuple(EDGES), help="outside the frame")

    def __post_init__(self) -> None:
        check_texture("displacement", "map", self.map, ("noise",))

    def bind(self, g: Geometry) -> "DisplacementOp":
        return DisplacementOp(self, g)


class DisplacementOp:
    def __init__(self, spec: Displacement, g: Geometry) -> None:
        self.spec = spec
        self.size = (g.width, g.height)
        self.ax = spec.amount if spec.amount_x < 0 else spec.amount_x
        self.ay = spec.amount if spec.amount_y < 0 else spec.amount_y
        self.identity = self.ax == 0 and self.ay == 0
        shape = (g.height, g.width)
        self.dx = np.zeros(shape, np.float32)
        self.dy = np.zeros(shape, np.float32)
        self.map_x = np.zeros(shape, np.float32)
        self.map_y = np.zeros(shape, np.float32)
        self.pm = np.zeros((g.height, g.width, 4), np.uint16)
        self.moved = np.zeros((g.height, g.width, 4), np.uint16)
        self.border = EDGES[spec.edge]
        self.animated = spec.map == "noise" and spec.speed > 0
        if spec.map == "noise":
            gw = max(2, int(round(g.width / spec.scale)) + 1)
            gh = max(2, int(round(g.height / spec.scale)) + 1)
            rng = np.random.default_rng(spec.seed)
            n = max(gw, gh) * 2
            self.keys = [[self._cut(smooth_noise(rng, n, 1.0), gh, gw) for _ in range(2)]
                         for _ in range(KEYFRAMES)]
            self.small = [np.zeros((gh, gw), np.float32) for _ in range(2)]
            self._fields(0.0)
        else:
            rgb = load_rgb(spec.map, g.width, g.height, "stretch").astype(np.float32)
            self.dx[...] = (rgb[..., 0] - 128.0) / 127.0
            self.dy[...] = (rgb[..., 1] - 128.0) / 127.0
        make_maps(self.dx, self.dy, np.float32(self.ax), np.float32(self.ay), self.map_x, self.map_y)

    @staticmethod
    def _cut(noise: np.ndarray, gh: int, gw: int) -> np.ndarray:
        return np.ascontiguousarray(noise[:gh, :gw])

    def _fields(self, t: float) -> None:
        """Noise at time t: smoothstep blend between keyframes, upsampled (bilinear) to full size."""
        phase = t * self.spec.speed
        k = int(np.floor(phase))
        f = phase - k
        f = f * f * (3 - 2 * f)
        a, b = self.keys[k % KEYFRAMES], self.keys[(k + 1) % KEYFRAMES]
        for c, dst in enumerate((self.dx, self.dy)):
            cv2.addWeighted(a[c], 1.0 - f, b[c], f, 0.0, dst=self.small[c])
            cv2.resize(self.small[c], self.size, dst=dst, interpolation=cv2.INTER_LINEAR)

    def __call__(self, src: np.ndarray, out: np.ndarray, t: float) -> None:
        if self.identity:
            np.copyto(out, src)
            return
        if self.animated:
            self._fields(t)
            make_maps(self.dx, self.dy, np.float32(self.ax), np.float32(self.ay), self.map_x, self.map_y)
        premultiply(src, self.pm)
        cv2.remap(self.pm, self.map_x, self.map_y, cv2.INTER_LINEAR, dst=self.moved,
                  borderMode=self.border, borderValue=0)
        unpremultiply(self.moved, out)

    def close(self) -> None:
        self.pm = self.moved = self.map_x = self.map_y = None


def warm() -> None:
    s = np.zeros((2, 2, 4), np.uint8)
    pm = np.zeros((2, 2, 4), np.uint16)
    premultiply(s, pm)
    unpremultiply(pm, s)
    z = np.zeros((2, 2), np.float32)
    make_maps(z, z, np.float32(1), np.float32(1), z.copy(), z.copy())
