"""displacement: shift pixels (colour and alpha together) by a map, like AE's Displacement Map."""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from keyer.effects.base import Geometry, param, register
from keyer.effects.textures import check_texture, load_rgb, smooth_noise
from keyer.effects import _composite
from keyer._jit import kernel

EDGES = {"transparent": cv2.BORDER_CONSTANT, "wrap": cv2.BORDER_WRAP, "clamp": cv2.BORDER_REPLICATE}
KEYFRAMES = 4      # noise maps the animated map cycles through
# Rows remapped at a time: the remapped rows (and an animated map's rows) are kept for one band,
# not the frame (2 MB at 1080p instead of 33), at 17 calls of each kind per 1080p frame.
BAND = 64


@kernel
def premultiply(src, y0, y1, x0, x1, out):
    """RGBA uint8 straight -> uint16 premultiplied ``(c * a, a * 255)``, inside the box.

    Pixels are packed words: ``src`` (H, W) uint32 (RGBA little-endian), ``out`` (H, W)
    uint64 (four uint16). Word loads and stores vectorise; byte and uint16 channel accesses
    (interleaved by 4) did not: 2-3x slower.
    """
    u32 = np.uint32
    for i in range(y0, y1):
        s = src[i, x0:x1]
        o = out[i, x0:x1]
        for k in range(s.shape[0]):
            v = s[k]
            a = v >> u32(24)
            lo = (v & u32(0xFF)) * a | (((v >> u32(8)) & u32(0xFF)) * a) << u32(16)
            hi = ((v >> u32(16)) & u32(0xFF)) * a | (a * u32(255)) << u32(16)
            o[k] = np.uint64(lo) | (np.uint64(hi) << np.uint64(32))


@kernel
def unpremultiply(pm, y0, y1, x0, x1, out):
    """uint16 premultiplied -> RGBA uint8 straight (all 0 where alpha < half a level), inside
    the box; packed words as in ``premultiply``. Branch-free, with np.true_divide (no
    ZeroDivisionError check): the loop vectorises."""
    f32 = np.float32
    u32 = np.uint32
    for i in range(y0, y1):
        p = pm[i, x0:x1]
        o = out[i, x0:x1]
        for k in range(p.shape[0]):
            v = p[k]
            lo = u32(v & np.uint64(0xFFFFFFFF))
            hi = u32(v >> np.uint64(32))
            a = f32(np.int32(hi >> u32(16)))
            # colour in float64 as before packing (255 / a promotes), alpha in float32
            inv = np.true_divide(255.0, max(np.float64(a), 1.0))
            c0 = u32(min(np.float64(np.int32(lo & u32(0xFFFF))) * inv + 0.5, 255.0))
            c1 = u32(min(np.float64(np.int32(lo >> u32(16))) * inv + 0.5, 255.0))
            c2 = u32(min(np.float64(np.int32(hi & u32(0xFFFF))) * inv + 0.5, 255.0))
            c3 = u32(np.true_divide(a, f32(255.0)) + f32(0.5))
            px = c0 | (c1 << u32(8)) | (c2 << u32(16)) | (c3 << u32(24))
            o[k] = px if a >= f32(128.0) else u32(0)


@kernel
def make_maps(dx, dy, ax, ay, y0, y1, x0, x1, ox, oy, map_x, map_y):
    """``map = identity + amount * field`` (fields in -1..1) inside the box, minus the origin
    (ox, oy) of the image remap will read (exact: whole numbers off a float32 below 2**24)."""
    for i in range(y0, y1):
        fx = dx[i, x0:x1]
        fy = dy[i, x0:x1]
        mx = map_x[i, x0:x1]
        my = map_y[i, x0:x1]
        fi = np.float32(i)
        fox = np.float32(ox)
        foy = np.float32(oy)
        for k in range(fx.shape[0]):   # int32 -> float32 converts 8 at a time (int64 does not)
            mx[k] = (np.float32(np.int32(x0 + k)) + ax * fx[k]) - fox
            my[k] = (fi + ay * fy[k]) - foy


@kernel
def grid_maps(gx, gy, cols, colf, rows, rowf, ax, ay, y0, y1, x0, x1, ox, oy, row0, line, map_x,
              map_y):
    """``make_maps`` with the fields sampled bilinearly from the noise grids ``gx``, ``gy``
    ((gh, gw) float32) inside the box only, as ``cv2.resize`` would upsample them to the frame:
    grid column ``cols[x]`` (and the next) weighted ``1 - colf[x]``, ``colf[x]``; rows likewise.
    Each row of the box blends two grid rows into ``line`` ((2, gw) float32) first, so the
    per-pixel work is two lookups in a short row and a blend per field. Frame row ``i`` goes to
    row ``i - row0`` of the maps (a band of rows: ``row0 = y0``; the whole frame: 0)."""
    gw = gx.shape[1]
    fox = np.float32(ox)
    foy = np.float32(oy)
    one = np.float32(1.0)
    lx = line[0]
    ly = line[1]
    for i in range(y0, y1):
        r0 = rows[i]
        fy = rowf[i]
        for c in range(gw):
            lx[c] = gx[r0, c] * (one - fy) + gx[r0 + 1, c] * fy
            ly[c] = gy[r0, c] * (one - fy) + gy[r0 + 1, c] * fy
        c0 = cols[x0:x1]
        cf = colf[x0:x1]
        mx = map_x[i - row0, x0:x1]
        my = map_y[i - row0, x0:x1]
        fi = np.float32(i)
        for k in range(mx.shape[0]):
            c = c0[k]
            f = cf[k]
            fx = lx[c] * (one - f) + lx[c + 1] * f
            fy_ = ly[c] * (one - f) + ly[c + 1] * f
            mx[k] = (np.float32(np.int32(x0 + k)) + ax * fx) - fox
            my[k] = (fi + ay * fy_) - foy


def _taps(size: int, grid: int) -> tuple[np.ndarray, np.ndarray]:
    """For each of ``size`` pixels, the grid cell (int32) and the weight of the next one
    (float32) that ``cv2.resize`` (INTER_LINEAR) gives when upsampling ``grid`` (>= 2) cells to
    ``size``; pixels on or past the last cell take cell ``grid - 2`` at weight 1, so the next
    cell always exists."""
    pos = (np.arange(size, dtype=np.float64) + 0.5) * (grid / size) - 0.5
    cell = np.floor(pos)
    frac = pos - cell
    frac[cell < 0] = 0.0
    cell[cell < 0] = 0
    last = cell >= grid - 1
    cell[last] = grid - 2
    frac[last] = 1.0
    return cell.astype(np.int32), frac.astype(np.float32)


@register("displacement")
@dataclass(frozen=True, kw_only=True)
class Displacement:
    """Shift pixels by a displacement map: a wobbly, hand-cut, "boiling" edge.

    Notes: the map's red/green (or two smooth noise fields) in -1..1 scale ``amount`` px in x/y.
    Sampling is bilinear on premultiplied RGBA (cv2.remap on uint16), so edges pick up no dark
    or green fringe; it goes ``BAND`` rows at a time, premultiplying for each band only the
    source rows its maps reach (the band's and ``reach`` either side; all of them for wrap):
    each output pixel depends only on its own map entry and those rows, so bands give the whole
    frame's result, and the premultiplied rows are still in the cache when remap reads them. ``speed`` > 0 drifts the noise through
    ``KEYFRAMES`` fields per cycle.
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
        self.ax = spec.amount if spec.amount_x < 0 else spec.amount_x
        self.ay = spec.amount if spec.amount_y < 0 else spec.amount_y
        self.identity = self.ax == 0 and self.ay == 0
        self.border = EDGES[spec.edge]
        self.animated = spec.map == "noise" and spec.speed > 0
        self.band = min(BAND, g.height)
        # how far an output pixel reads from itself: the largest shift and the bilinear footprint
        self.reach = int(np.ceil(max(abs(self.ax), abs(self.ay)))) + 1
        # an animated map is made band by band every frame; a static one once, whole
        maps = (self.band, g.width) if self.animated else (g.height, g.width)
        self.map_x = np.zeros(maps, np.float32)
        self.map_y = np.zeros(maps, np.float32)
        # the premultiplied source, band by band: a band's rows and ``reach`` either side (all
        # rows for wrap, which reads across the frame)
        rows = g.height if self.border == cv2.BORDER_WRAP else self.band + 2 * self.reach
        self.pm = np.zeros((min(rows, g.height), g.width, 4), np.uint16)
        self.moved = np.zeros((self.band, g.width, 4), np.uint16)
        # a static map's rows for one band, moved to the band's origin
        self.band_y = np.zeros((self.band, g.width) if not self.animated else (0, 0), np.float32)
        # written before they are read in every call (keyer.stages.share_scratch)
        self.scratch_arrays = ("pm", "moved") + (("map_x", "map_y") if self.animated else ("band_y",))
        if spec.map == "noise":
            gw = max(2, int(round(g.width / spec.scale)) + 1)
            gh = max(2, int(round(g.height / spec.scale)) + 1)
            rng = np.random.default_rng(spec.seed)
            n = max(gw, gh) * 2
            self.keys = [[self._cut(smooth_noise(rng, n, 1.0), gh, gw) for _ in range(2)]
                         for _ in range(KEYFRAMES)]
            self.small = [np.zeros((gh, gw), np.float32) for _ in range(2)]
            self.cols, self.colf = _taps(g.width, gw)
            self.rows, self.rowf = _taps(g.height, gh)
            self.line = np.zeros((2, gw), np.float32)
            self._fields(0.0)
        else:   # a picture: its fields at full size, made once
            rgb = load_rgb(spec.map, g.width, g.height, "stretch").astype(np.float32)
            self.dx = (rgb[..., 0] - 128.0) / 127.0
            self.dy = (rgb[..., 1] - 128.0) / 127.0
        self.maps_for: tuple | None = None    # (in box, out box) the static maps were made for

    @staticmethod
    def _cut(noise: np.ndarray, gh: int, gw: int) -> np.ndarray:
        return np.ascontiguousarray(noise[:gh, :gw])

    def _fields(self, t: float) -> None:
        """Noise grids at time t: smoothstep blend between keyframes (upsampled by
        ``grid_maps``, inside the box only)."""
        phase = t * self.spec.speed
        k = int(np.floor(phase))
        f = phase - k
        f = f * f * (3 - 2 * f)
        a, b = self.keys[k % KEYFRAMES], self.keys[(k + 1) % KEYFRAMES]
        for c in range(2):
            cv2.addWeighted(a[c], 1.0 - f, b[c], f, 0.0, dst=self.small[c])

    def __call__(self, src: np.ndarray, out: np.ndarray, t: float,
                 boxes: _composite.Boxes | None = None) -> None:
        if self.identity:
            _composite.copy_outside(src, _composite.EMPTY, out, boxes)   # all of it
            return
        h, w = src.shape[0], src.shape[1]
        inbox = _composite.find_subject(src, boxes)
        if inbox[0] >= inbox[1]:
            _composite.clear_outside(_composite.EMPTY, out, boxes)   # all of it
            return
        border = cv2.BORDER_CONSTANT
        outbox = _composite.pad(inbox, self.reach, h, w)
        if self.border != cv2.BORDER_CONSTANT and _composite.pad(inbox, self.reach + 1, h, w) != (
                inbox[0] - self.reach - 1, inbox[1] + self.reach + 1,
                inbox[2] - self.reach - 1, inbox[3] + self.reach + 1):
            inbox = outbox = (0, h, 0, w)   # the edge rule can matter: the whole frame
            border = self.border
        ax, ay = np.float32(self.ax), np.float32(self.ay)
        iy0, iy1, ix0, ix1 = inbox
        oy0, oy1, ox0, ox1 = outbox
        if self.animated:
            self._fields(t)
        elif self.maps_for != (inbox, outbox):
            if self.spec.map == "noise":
                grid_maps(*self.small, self.cols, self.colf, self.rows, self.rowf, ax, ay, *outbox,
                          ix0, iy0, 0, self.line, self.map_x, self.map_y)
            else:
                make_maps(self.dx, self.dy, ax, ay, *outbox, ix0, iy0, self.map_x, self.map_y)
            self.maps_for = (inbox, outbox)
        px = _composite.words(src, np.uint32)
        pm = _composite.words(self.pm, np.uint64)
        whole = self.pm.shape[0] == h   # the whole frame premultiplied once, in place
        if whole:
            premultiply(px, *inbox, pm)
        moved = _composite.words(self.moved, np.uint64)
        out_px = _composite.words(out, np.uint32)
        for y0 in range(oy0, oy1, self.band):   # remapped and unpremultiplied band by band
            y1 = min(y0 + self.band, oy1)
            # the source rows this band reads (its maps stay within ``reach``)
            s0, s1 = (iy0, iy1) if whole else (max(iy0, y0 - self.reach), min(iy1, y1 + self.reach))
            if whole:
                image = self.pm[iy0:iy1, ix0:ix1]
            else:
                premultiply(px[s0:s1], 0, s1 - s0, ix0, ix1, pm)
                image = self.pm[:s1 - s0, ix0:ix1]
            if self.animated:
                grid_maps(*self.small, self.cols, self.colf, self.rows, self.rowf, ax, ay,
                          y0, y1, ox0, ox1, ix0, s0, y0, self.line, self.map_x, self.map_y)
                map_x, map_y = self.map_x[:y1 - y0, ox0:ox1], self.map_y[:y1 - y0, ox0:ox1]
            else:
                map_x, map_y = self.map_x[y0:y1, ox0:ox1], self.map_y[y0:y1, ox0:ox1]
                if s0 != iy0:   # made for the image at iy0 (exact: whole numbers off a float32)
                    map_y = np.subtract(map_y, np.float32(s0 - iy0),
                                        out=self.band_y[:y1 - y0, ox0:ox1])
            cv2.remap(image, map_x, map_y, cv2.INTER_LINEAR, dst=self.moved[:y1 - y0, ox0:ox1],
                      borderMode=border, borderValue=0)
            unpremultiply(moved, 0, y1 - y0, ox0, ox1, out_px[y0:y1])
        _composite.clear_outside(outbox, out, boxes)
        _composite.output_subject(out, outbox, boxes)

    def close(self) -> None:
        self.pm = self.moved = self.map_x = self.map_y = self.band_y = None


def warm() -> None:
    _composite.warm("subject_box")   # the shared kernels it runs
    s = np.zeros((2, 2), np.uint32)
    pm = np.zeros((2, 2), np.uint64)
    premultiply(s, 0, 2, 0, 2, pm)
    unpremultiply(pm, 0, 2, 0, 2, s)
    z = np.zeros((2, 2), np.float32)
    make_maps(z, z, np.float32(1), np.float32(1), 0, 2, 0, 2, 0, 0, z.copy(), z.copy())
    cols, colf = _taps(2, 2)
    grid_maps(z, z, cols, colf, cols, colf, np.float32(1), np.float32(1), 0, 2, 0, 2, 0, 0, 0,
              z.copy(), z.copy(), z.copy())
