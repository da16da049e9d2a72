"""displacement: shift pixels (colour and alpha together) by a map, like AE's Displacement Map."""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from effects.base import Geometry, param, register
from effects.textures import check_texture, load_rgb, smooth_noise
from effects import _composite
from keyer._jit import kernel

KERNEL_DEPS = (_composite,)   # kernels this effect runs from other modules

EDGES = {"transparent": cv2.BORDER_CONSTANT, "wrap": cv2.BORDER_WRAP, "clamp": cv2.BORDER_REPLICATE}
KEYFRAMES = 4      # noise maps the animated map cycles through


@kernel
def premultiply(src, y0, y1, x0, x1, out):
    """RGBA uint8 straight -> uint16 premultiplied: ``(c * a, a * 255)``, inside the box."""
    for i in range(y0, y1):
        s = src[i, x0:x1]
        o = out[i, x0:x1]
        for k in range(s.shape[0]):
            a = np.uint16(s[k, 3])
            o[k, 0] = np.uint16(s[k, 0]) * a
            o[k, 1] = np.uint16(s[k, 1]) * a
            o[k, 2] = np.uint16(s[k, 2]) * a
            o[k, 3] = a * np.uint16(255)


@kernel
def unpremultiply(pm, y0, y1, x0, x1, out):
    """uint16 premultiplied -> RGBA uint8 straight (colour 0 where alpha is 0), inside the box."""
    for i in range(y0, y1):
        p = pm[i, x0:x1]
        o = out[i, x0:x1]
        for k in range(p.shape[0]):
            a = p[k, 3]
            if a < 128:
                o[k, 0] = 0
                o[k, 1] = 0
                o[k, 2] = 0
                o[k, 3] = 0
                continue
            inv = np.float32(255.0) / a
            v0 = p[k, 0] * inv
            v1 = p[k, 1] * inv
            v2 = p[k, 2] * inv
            o[k, 0] = 255 if v0 >= 254.5 else np.uint8(v0 + 0.5)
            o[k, 1] = 255 if v1 >= 254.5 else np.uint8(v1 + 0.5)
            o[k, 2] = 255 if v2 >= 254.5 else np.uint8(v2 + 0.5)
            o[k, 3] = np.uint8(a / np.float32(255.0) + np.float32(0.5))


@kernel
def make_maps(dx, dy, ax, ay, y0, y1, x0, x1, ox, oy, map_x, map_y):
    """``map = identity + amount * field`` (fields in -1..1) inside the box, minus the origin
    (ox, oy) of the image remap will read (exact: whole numbers off a float32 below 2**24)."""
    for i in range(y0, y1):
        fx = dx[i, x0:x1]
        fy = dy[i, x0:x1]
        mx = map_x[i, x0:x1]
        my = map_y[i, x0:x1]
        for k in range(fx.shape[0]):
            mx[k] = np.float32((x0 + k) + ax * fx[k]) - np.float32(ox)
            my[k] = np.float32(i + ay * fy[k]) - np.float32(oy)


@register("displacement")
@dataclass(frozen=True, kw_only=True)
class Displacement:
    """Shift pixels by a displacement map: a wobbly, hand-cut, "boiling" edge.

    Notes: the map's red/green (or two smooth noise fields) in -1..1 scale ``amount`` px in x/y.
    Sampling is bilinear on premultiplied RGBA (cv2.remap on uint16), so edges pick up no dark
    or green fringe. ``speed`` > 0 drifts the noise through ``KEYFRAMES`` fields per cycle.
    Only the subject's box grown by the largest shift (+1 px for the bilinear footprint) is
    remapped, reading the subject's box only; the rest is transparent, as on the full frame.
    With ``edge`` wrap or clamp that holds only while the subject stays that far from the
    frame's edges; otherwise the whole frame is remapped.
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
        # how far an output pixel reads from itself: the largest shift and the bilinear footprint
        self.reach = int(np.ceil(max(abs(self.ax), abs(self.ay)))) + 1
        self.maps_for: tuple | None = None    # (in box, out box) the static maps were made for

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
        h, w = src.shape[0], src.shape[1]
        inbox = _composite.subject_box(src)
        if inbox[0] >= inbox[1]:
            out.fill(0)
            return
        border = cv2.BORDER_CONSTANT
        outbox = _composite.pad(inbox, self.reach, h, w)
        if self.border != cv2.BORDER_CONSTANT and _composite.pad(inbox, self.reach + 1, h, w) != (
                inbox[0] - self.reach - 1, inbox[1] + self.reach + 1,
                inbox[2] - self.reach - 1, inbox[3] + self.reach + 1):
            inbox = outbox = (0, h, 0, w)   # the edge rule can matter: the whole frame
            border = self.border
        if self.animated:
            self._fields(t)
        if self.animated or self.maps_for != (inbox, outbox):
            make_maps(self.dx, self.dy, np.float32(self.ax), np.float32(self.ay), *outbox,
                      inbox[2], inbox[0], self.map_x, self.map_y)
            self.maps_for = (inbox, outbox)
        iy0, iy1, ix0, ix1 = inbox
        oy0, oy1, ox0, ox1 = outbox
        premultiply(src, *inbox, self.pm)
        cv2.remap(self.pm[iy0:iy1, ix0:ix1], self.map_x[oy0:oy1, ox0:ox1],
                  self.map_y[oy0:oy1, ox0:ox1], cv2.INTER_LINEAR,
                  dst=self.moved[oy0:oy1, ox0:ox1], borderMode=border, borderValue=0)
        unpremultiply(self.moved, *outbox, out)
        _composite.clear_outside(outbox, out)

    def close(self) -> None:
        self.pm = self.moved = self.map_x = self.map_y = None


def warm() -> None:
    s = np.zeros((2, 2, 4), np.uint8)
    pm = np.zeros((2, 2, 4), np.uint16)
    premultiply(s, 0, 2, 0, 2, pm)
    unpremultiply(pm, 0, 2, 0, 2, s)
    z = np.zeros((2, 2), np.float32)
    make_maps(z, z, np.float32(1), np.float32(1), 0, 2, 0, 2, 0, 0, z.copy(), z.copy())
