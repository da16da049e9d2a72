"""``keyer run --for PLATFORM``: a sticker the platform accepts, at the best quality that fits.

    probe -> plan -> decode -> posterize -> key -> effects -> spool A (keyed once, lossless)
          -> union alpha box -> spool B (framed and scaled to the canvas, lossless)
          -> size search: encode attempts from spool B -> keyer check -> publish

1. **Key and style once.** The usual stages (``keyer.pipeline.Run``) key every frame and apply
   the effects once; each frame is cut to its own alpha box and written, zlib-compressed
   (lossless), to spool A on disk beside the output. A clip longer than the platform allows is
   cut at the limit here (``--too-long trim``, the default: the start of a take is what its
   author framed; ``speed`` plays it faster instead, ``error`` refuses it).
2. **Frame.** The union of the frames' alpha boxes (the effects' padding included: ``--pad`` is
   derived from the effects when not given) is scaled, aspect kept, to the largest size the
   canvas takes, and centred on it. Spool B holds each frame at that size (premultiplied
   resize, so edges get no dark fringe), again lossless on disk.
3. **Search.** Each attempt encodes spool B onto a constant grid of whole-millisecond frame
   times (``fps``; runs of one image merge into one longer frame) with one quality setting. A
   rate model ``ln(bytes) = a + b * x`` (``x``: VP9's crf, 100 - WebP quality, log2 of the
   APNG colour step) starts from a prior slope and is refitted on each attempt's bytes; the
   search aims at 95 % of the limit and stops in 90..100 %. Quality goes down first (to a
   floor), then the frame rate (not below 12), then, past the floor, quality again, then the
   resolution where the platform allows it (LINE). Every attempt is logged (``sticker_attempt``).
4. **Check, then publish.** The chosen file is read back by ``keyer.stickercheck`` with the
   same rules ``keyer check`` applies; a file that breaks one is never published.

Memory stays bounded by the frame size: one frame is decoded, keyed, spooled or encoded at a
time, and the spools are on disk. The spools (and every attempt but the published one) are
removed, whatever happens.
"""
from __future__ import annotations

import math
import os
import shutil
import struct
import tempfile
import time
import zlib
from dataclasses import dataclass, replace
from fractions import Fraction
from pathlib import Path
from typing import Any, Iterator

import av
import cv2
import numpy as np

from keyer.errors import InputProblem, OutputProblem, UsageProblem
from keyer.frame import EMPTY, Box
from keyer.platforms import Profile, profile as get_profile

MIN_FPS = 12            # the frame rate is never lowered below this
MAX_FPS = 30            # no platform shows stickers faster; the others are capped here too
AIM, LOW = 0.95, 0.90   # the search aims at 95 % of the limit and accepts 90..100 %
MAX_ATTEMPTS = 12
SCALES = (0.8, 0.64, 0.5, 0.4)   # the subject's size on the canvas, when all else fails
RATE_EXP, AREA_EXP = 0.5, 1.5    # bytes ~ fps^0.5 * scale^1.5 (see Search.expected)


# ---------------------------------------------------------------- the spool
class Spool:
    """Frames on disk, lossless: a record per frame (start and duration in ``time_base``
    units, the box it fills, zlib of its RGBA pixels), read back one at a time."""

    HEAD = struct.Struct("<qqiiiiI")

    def __init__(self, path: Path, time_base: Fraction, size: tuple[int, int]) -> None:
        self.path, self.time_base, self.size = path, time_base, size   # size: (width, height)
        self.fh = path.open("wb")
        self.count = 0
        self.end = 0          # end of the last frame, in time_base units
        self.bytes = 0

    def write(self, start: int, duration: int, box: Box, pixels: np.ndarray) -> None:
        data = zlib.compress(np.ascontiguousarray(pixels).data, 1)
        self.fh.write(self.HEAD.pack(start, duration, *box, len(data)))
        self.fh.write(data)
        self.count += 1
        self.bytes += len(data) + self.HEAD.size
        self.end = max(self.end, start + duration)

    def close(self) -> None:
        if not self.fh.closed:
            self.fh.close()

    def records(self) -> Iterator[tuple[int, int, Box, bytes]]:
        """(start, duration, box, compressed pixels) of each frame, in order."""
        with self.path.open("rb") as fh:
            while True:
                head = fh.read(self.HEAD.size)
                if len(head) < self.HEAD.size:
                    return
                start, duration, y0, y1, x0, x1, n = self.HEAD.unpack(head)
                yield start, duration, (y0, y1, x0, x1), fh.read(n)

    def unpack(self, box: Box, data: bytes, canvas: np.ndarray) -> np.ndarray:
        """Draw a record's pixels into ``canvas`` (the spool's size), transparent elsewhere."""
        y0, y1, x0, x1 = box
        canvas[...] = 0
        if y1 > y0 and x1 > x0:
            pixels = np.frombuffer(zlib.decompress(data), np.uint8)
            canvas[y0:y1, x0:x1] = pixels.reshape(y1 - y0, x1 - x0, 4)
        return canvas

    def read(self) -> Iterator[tuple[int, int, np.ndarray]]:
        """(start, duration, rgba) of each frame, full size; ``rgba`` is one reused buffer."""
        width, height = self.size
        canvas = np.zeros((height, width, 4), np.uint8)
        for start, duration, box, data in self.records():
            yield start, duration, self.unpack(box, data, canvas)


def alpha_box(rgba: np.ndarray, within: Box | None = None) -> Box:
    """The exact box of ``rgba``'s non-zero alpha (``within``: a box outside which it is all
    zero, to search less)."""
    y0, y1, x0, x1 = within if within is not None else (0, rgba.shape[0], 0, rgba.shape[1])
    if y1 <= y0 or x1 <= x0:
        return EMPTY
    a = rgba[y0:y1, x0:x1, 3]
    rows = np.flatnonzero(a.any(axis=1))
    if rows.size == 0:
        return EMPTY
    cols = np.flatnonzero(a[rows[0]:rows[-1] + 1].any(axis=0))
    return (y0 + int(rows[0]), y0 + int(rows[-1]) + 1, x0 + int(cols[0]), x0 + int(cols[-1]) + 1)


def union(a: Box, b: Box) -> Box:
    if a[0] >= a[1]:
        return b
    if b[0] >= b[1]:
        return a
    return (min(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), max(a[3], b[3]))


def resize_rgba(rgba: np.ndarray, width: int, height: int) -> np.ndarray:
    """Straight-alpha RGBA resized with premultiplied colour (no dark fringe at the edge):
    area averaging to shrink, bicubic to enlarge."""
    if rgba.shape[1] == width and rgba.shape[0] == height:
        return rgba.copy()
    shrink = width < rgba.shape[1] or height < rgba.shape[0]
    f = rgba.astype(np.float32)
    f[..., :3] *= f[..., 3:4] * (1 / 255)
    g = cv2.resize(f, (width, height), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_CUBIC)
    np.clip(g, 0, 255, out=g)
    a = g[..., 3:4]
    g[..., :3] = np.where(a > 0.5, g[..., :3] * 255 / np.maximum(a, 1e-3), 0)
    out = np.clip(g + 0.5, 0, 255).astype(np.uint8)
    out[out[..., 3] == 0, :3] = 0
    return out


# ---------------------------------------------------------------- the plan of a sticker
@dataclass(frozen=True)
class Layout:
    """Where the subject goes and when each output frame starts (whole milliseconds)."""

    canvas: tuple[int, int]       # (width, height)
    content: tuple[int, int]      # the subject box scaled, (width, height)
    offset: tuple[int, int]       # its top-left corner on the canvas (x, y)
    length_ms: int                # the sticker's length
    speed: Fraction               # source seconds per sticker second (1: as filmed)
    plays: int                    # 0 = forever


def grid(length_ms: int, fps: float) -> list[int]:
    """Frame boundaries in ms: ``floor(length * fps)`` frames spread evenly over the length, so
    the mean rate never exceeds ``fps`` and every frame is within 1 ms of the others."""
    n = max(1, math.floor(length_ms / 1000 * fps + 1e-9))
    return [round(length_ms * k / n) for k in range(n + 1)]


def timeline(spool: Spool, layout: Layout, fps: float, merge: bool
             ) -> Iterator[tuple[int, int, np.ndarray]]:
    """(start ms, duration ms, rgba) of the sticker's frames at ``fps`` from ``spool``: at each
    grid time, the source frame current then (held past the clip's end); with ``merge``,
    consecutive slots showing one source frame become one longer frame."""
    bounds = grid(layout.length_ms, fps)
    tb = spool.time_base
    width, height = spool.size
    canvas = np.zeros((height, width, 4), np.uint8)
    records = spool.records()
    current = next(records, None)
    if current is None:
        return
    following = next(records, None)
    shown, start = None, 0
    for k in range(len(bounds) - 1):
        # source seconds; + 1/2 ms: the grid is rounded to whole ms, the source is not
        t = Fraction(2 * bounds[k] + 1, 2000) * layout.speed
        while following is not None and following[0] * tb <= t:
            current, following = following, next(records, None)
        if merge and shown is current:
            continue
        if shown is not None:
            yield start, bounds[k] - start, spool.unpack(shown[2], shown[3], canvas)
        shown, start = current, bounds[k]
    if shown is not None:
        yield start, bounds[-1] - start, spool.unpack(shown[2], shown[3], canvas)


# ---------------------------------------------------------------- encoders and their knobs
@dataclass(frozen=True)
class Knob:
    """The quality setting a codec is searched over: ``x`` grows as the file shrinks."""

    name: str
    best: float            # the best quality's x
    floor: float           # lowest quality before the frame rate is lowered
    worst: float           # the lowest quality at all
    start: float           # the first attempt
    slope: float           # prior d ln(bytes) / dx
    integer: bool

    def value(self, x: float):
        """The encoder's setting for ``x``."""
        raise NotImplementedError


class Crf(Knob):
    def value(self, x):
        return int(round(x))


class WebpQuality(Knob):
    def value(self, x):
        return int(round(100 - x))


class ColourStep(Knob):
    """APNG's loss: colour rounded to multiples of ``2 ** min(x, 6)``, and past x = 3 the
    colour first smoothed (Gaussian, sigma ``0.5 * (x - 3)`` px): noise and grain are what
    deflate cannot pack, and rounding alone leaves them (measured on a grainy subject: step 64
    alone still 2.2x Signal's limit)."""

    def value(self, x):
        return int(round(2 ** min(x, 6)))

    def sigma(self, x):
        return max(0.0, 0.5 * (x - 3))


KNOBS = {
    # VP9 crf (b=0: constant quality). Prior slope from 512x512 clips: ln(bytes) falls ~0.09
    # per crf step.
    "vp9": Crf("crf", best=10, floor=48, worst=63, start=30, slope=-0.09, integer=True),
    # WebP quality (x = 100 - quality); ~0.02 per quality point on keyed footage.
    "webp": WebpQuality("quality", best=0, floor=55, worst=95, start=20, slope=-0.02,
                        integer=True),
    # APNG: colours rounded to multiples of a step (x = log2 step; 0 = lossless RGBA).
    "apng": ColourStep("colour_step", best=0, floor=4.5, worst=8, start=0, slope=-0.45,
                       integer=False),
}


def encode_attempt(spool: Spool, layout: Layout, prof: Profile, x: float, fps: float,
                   scale: float, path: Path, threads: int = 0) -> int:
    """Encode the sticker from ``spool`` at quality ``x`` and ``fps`` into ``path``; its bytes."""
    from keyer.animated import AnimatedFrames
    from keyer.encode import rgba_to_frame
    from keyer.formats import FORMATS

    knob = KNOBS[prof.codec]
    width, height = layout.canvas
    small = (even(width * scale), even(height * scale)) if scale < 1 else None
    inset = np.zeros((height, width, 4), np.uint8) if small else None
    tb = Fraction(1, 1000)
    if prof.codec == "vp9":
        fmt, opts = FORMATS[".webm"], {"crf": str(knob.value(x)), "b": "0", "deadline": "good",
                                       "cpu-used": "4", "row-mt": "1", "lag-in-frames": "16",
                                       "auto-alt-ref": "1"}
        muxer, container, convert = {}, "webm", None
    elif prof.codec == "webp":
        fmt, opts = FORMATS[".webp"], {"quality": str(knob.value(x)), "compression_level": "4"}
        muxer, container, convert = {"loop": "0"}, "webp", AnimatedFrames("bgra")
    else:
        # mixed: the best of FFmpeg's row filters per row (as fast as paeth alone, measured)
        fmt, opts = FORMATS[".apng"], {"pred": "mixed"}
        # the muxer takes a frame's delay from the next frame's timestamp, and the last one's
        # from final_delay (else it repeats the one before): the grid's last step, exactly
        bounds = grid(layout.length_ms, fps)
        muxer = {"plays": str(layout.plays), "final_delay": f"{(bounds[-1] - bounds[-2]) / 1000}"}
        container, convert = "apng", AnimatedFrames("rgba")
    step = knob.value(x) if prof.codec == "apng" else 1
    sigma = knob.sigma(x) if prof.codec == "apng" else 0.0
    with av.open(str(path), "w", format=container, options=muxer) as out:
        stream = out.add_stream(fmt.codec, rate=max(1, round(fps)), options=opts)
        stream.width, stream.height, stream.pix_fmt = width, height, fmt.pix_fmt
        stream.time_base = tb
        stream.codec_context.time_base = tb
        stream.codec_context.thread_count = threads
        durations = {}
        merge = prof.codec != "apng"   # APNG: every grid step a frame (see final_delay)
        for start, duration, rgba in timeline(spool, layout, fps, merge=merge):
            if small:   # the subject smaller, centred on the same canvas
                sw, sh = small
                x0, y0 = (width - sw) // 2, (height - sh) // 2
                inset[...] = 0
                inset[y0:y0 + sh, x0:x0 + sw] = resize_rgba(rgba, sw, sh)
                rgba = inset
            if sigma > 0:
                smooth(rgba, sigma)
            if step > 1:
                quantize(rgba, step)
            vf = rgba_to_frame(rgba, fmt, np.zeros((1, 1, 3), np.uint8)) if convert is None \
                else convert(rgba)
            vf.pts, vf.duration, vf.time_base = start, duration, tb
            durations[start] = duration
            for packet in stream.encode(vf):
                packet.duration = durations.pop(packet.pts, packet.duration)
                out.mux(packet)
        for packet in stream.encode(None):
            packet.duration = durations.pop(packet.pts, packet.duration)
            out.mux(packet)
    return path.stat().st_size


def quantize(rgba: np.ndarray, step: int) -> None:
    """Round colour (not alpha) to multiples of ``step`` in place: fewer distinct values, so
    deflate finds longer matches (APNG's lossy knob; it stays RGBA, never a palette)."""
    rgb = rgba[..., :3]
    q = (rgb.astype(np.uint16) + step // 2) // step * step
    np.minimum(q, 255, out=q)
    rgb[...] = q


def smooth(rgba: np.ndarray, sigma: float) -> None:
    """Blur the colour (not the alpha) in place, weighted by alpha so that the transparent
    surround does not darken the edge (OpenCV's Gaussian: separable, SIMD)."""
    a = rgba[..., 3:4].astype(np.float32)
    pre = rgba[..., :3].astype(np.float32) * a
    pre = cv2.GaussianBlur(pre, (0, 0), sigma)
    weight = cv2.GaussianBlur(a, (0, 0), sigma)[..., None]
    rgb = pre / np.maximum(weight, 1e-3)
    rgba[..., :3] = np.where(a > 0, np.clip(rgb + 0.5, 0, 255), 0).astype(np.uint8)


def even(v: float) -> int:
    return max(2, int(round(v / 2)) * 2)


# ---------------------------------------------------------------- the search
@dataclass
class Attempt:
    x: float
    fps: float
    scale: float
    bytes: int
    path: Path


class Search:
    """Attempts, the rate model, and the best attempt under the limit so far."""

    def __init__(self, spool: Spool, layout: Layout, prof: Profile, work: Path, log: Any,
                 threads: int, prior: Attempt | None = None) -> None:
        self.spool, self.layout, self.prof, self.work, self.log = spool, layout, prof, work, log
        self.knob = KNOBS[prof.codec]
        self.limit = prof.limit_bytes
        self.attempts: list[Attempt] = []
        self.threads = threads
        self.prior = prior          # a guess standing in for an attempt before the first

    def encode(self, x: float, fps: float, scale: float = 1.0) -> Attempt:
        knob = self.knob
        x = min(max(x, knob.best), knob.worst)
        if knob.integer:
            x = float(round(x))
        for a in self.attempts:
            if a.x == x and a.fps == fps and a.scale == scale:
                return a
        path = self.work / f"attempt{len(self.attempts) + 1}{self.prof.ext}"
        t = time.perf_counter()
        size = encode_attempt(self.spool, self.layout, self.prof, x, fps, scale, path,
                              self.threads)
        a = Attempt(x, fps, scale, size, path)
        self.attempts.append(a)
        self.log.info("sticker_attempt", attempt=len(self.attempts), knob=knob.name,
                      value=knob.value(x), fps=round(fps, 3), scale=round(scale, 3),
                      bytes=size, limit=self.limit, share=round(size / self.limit, 4),
                      elapsed_s=round(time.perf_counter() - t, 3))
        return a

    def best(self) -> Attempt | None:
        fitting = [a for a in self.attempts if a.bytes <= self.limit]
        return max(fitting, key=lambda a: (a.bytes, -a.x)) if fitting else None

    def settle(self, fps: float, lo_x: float, hi_x: float, start: float,
               scale: float = 1.0) -> Attempt | None:
        """Search x in [lo_x, hi_x] at ``fps``: the attempt landing in 90..100 % of the limit,
        or the best quality that fits when even ``lo_x`` is under 90 %; None when ``hi_x`` is
        still over the limit."""
        knob, limit = self.knob, self.limit
        aim = math.log(AIM * limit)
        over, under = None, None      # the largest x over the limit, the smallest x under 90 %
        x = start
        for _ in range(MAX_ATTEMPTS):
            if len(self.attempts) >= MAX_ATTEMPTS * 2:
                break
            a = self.encode(x, fps, scale)
            if a.bytes > limit:
                over = a if over is None or a.x > over.x else over
                if a.x >= hi_x:
                    return None
            elif a.bytes >= LOW * limit or a.x <= lo_x:
                return a
            else:
                under = a if under is None or a.x < under.x else under
            x = self._next(a, fps, scale, aim, over, under, lo_x, hi_x)
            if x is None:
                break
        fitting = [a for a in self.attempts
                   if a.fps == fps and a.scale == scale and a.bytes <= limit]
        return max(fitting, key=lambda a: a.bytes) if fitting else None

    def _next(self, a: Attempt, fps: float, scale: float, aim: float, over, under,
              lo_x: float, hi_x: float) -> float | None:
        knob = self.knob
        same = sorted((b for b in self.attempts if b.fps == fps and b.scale == scale),
                      key=lambda b: abs(b.x - a.x))
        slope = knob.slope
        if len(same) >= 2:
            # the two attempts nearest the last one, with distinct x: a local secant
            b = next((b for b in same[1:] if b.x != a.x), None)
            if b is not None and b.bytes != a.bytes:
                fitted = (math.log(a.bytes) - math.log(b.bytes)) / (a.x - b.x)
                if fitted < 0:
                    slope = fitted
        x = a.x + (aim - math.log(a.bytes)) / slope
        lo = over.x if over is not None else lo_x
        hi = under.x if under is not None else hi_x
        lo, hi = max(lo, lo_x), min(hi, hi_x)
        if knob.integer:
            x = round(x)
            if over is not None and x <= over.x:
                x = over.x + 1
            if under is not None and x >= under.x:
                x = under.x - 1
            if over is not None and under is not None and under.x - over.x <= 1:
                return None
            x = min(max(x, lo_x), hi_x)
        else:
            if over is not None and under is not None and under.x - over.x < 0.05:
                return None
            if over is not None:
                x = max(x, over.x + 0.02)
            if under is not None:
                x = min(x, under.x - 0.02)
            x = min(max(x, lo_x), hi_x)
        if any(b.x == x and b.fps == fps and b.scale == scale for b in self.attempts):
            return None
        return x

    def expected(self, x: float, fps: float, scale: float) -> float:
        """ln(bytes) the model expects at ``x``, ``fps`` and ``scale``: the last attempt (or
        the prior) moved along the fitted slope, times the rate and the area (bytes ~ fps^0.5
        and ~ scale^1.5, measured on the sample: fewer frames differ more from each other,
        and a smaller subject keeps its edges)."""
        ref = self.attempts[-1] if self.attempts else self.prior
        return (math.log(ref.bytes) + RATE_EXP * math.log(fps / ref.fps)
                + AREA_EXP * math.log(scale / ref.scale) + self.fitted_slope() * (x - ref.x))

    def predict(self, fps: float, scale: float, lo_x: float, hi_x: float) -> float:
        """Where to start at a rate and scale: the x the model says lands at 95 % of the limit."""
        ref = self.attempts[-1] if self.attempts else self.prior
        x = ref.x + (math.log(AIM * self.limit) - self.expected(ref.x, fps, scale)) \
            / self.fitted_slope()
        return min(max(x, lo_x), hi_x)

    def fitted_slope(self) -> float:
        """The slope of ln(bytes) over x fitted to the attempts at one rate and scale (the
        prior when no two differ in x)."""
        groups: dict = {}
        for a in self.attempts:
            groups.setdefault((a.fps, a.scale), []).append(a)
        for group in sorted(groups.values(), key=len, reverse=True):
            xs = np.array([a.x for a in group])
            if len(group) >= 2 and np.ptp(xs) > 0:
                slope = float(np.polyfit(xs, np.log([a.bytes for a in group]), 1)[0])
                if slope < 0:
                    return slope
        return self.knob.slope

    def run(self, fps0: float) -> Attempt:
        """Quality first (down to its floor), then the frame rate (not below 12), then the
        subject's size on the canvas (the canvas itself stays as the platform wants it), and
        only then quality below its floor. A step the model already expects to be over the
        limit by more than 20 % even at the floor is skipped without an encode."""
        knob = self.knob
        start = self.predict(fps0, 1.0, knob.best, knob.floor) if self.prior else knob.start
        found = self.settle(fps0, knob.best, knob.floor, start)
        if found:
            return found
        # lower rates that keep every k-th frame of the grid (24 -> 12, 30 -> 15): a rate that
        # is not a divisor shows uneven steps of motion, which costs more bytes (measured:
        # 20 fps from a 24 fps clip was 25 % larger than 24 fps itself)
        rates = [fps0 / k for k in range(2, 6) if fps0 / k >= MIN_FPS - 1e-6]
        if not rates and fps0 > MIN_FPS:
            rates = [MIN_FPS]
        slowest = rates[-1] if rates else fps0
        steps = [(fps, 1.0) for fps in rates] + [(slowest, scale) for scale in SCALES]
        too_big = math.log(1.2 * self.limit)
        for n, (fps, scale) in enumerate(steps):
            if n < len(steps) - 1 and self.expected(knob.floor, fps, scale) > too_big:
                continue
            found = self.settle(fps, knob.best, knob.floor,
                                self.predict(fps, scale, knob.best, knob.floor), scale)
            if found:
                return found
        scale = SCALES[-1]
        found = self.settle(slowest, knob.floor, knob.worst,
                            self.predict(slowest, scale, knob.floor, knob.worst), scale)
        if found:
            return found
        smallest = min(self.attempts, key=lambda a: a.bytes)
        raise InputProblem(
            f"{self.prof.name}: cannot get under {self.limit} bytes; the smallest attempt was "
            f"{smallest.bytes} ({knob.name} {knob.value(smallest.x)}, {smallest.fps:g} fps, "
            f"subject at {smallest.scale:.0%})")


# ---------------------------------------------------------------- the job
def sticker_output(job, prof: Profile) -> Path:
    """The output path, checked: the profile's extension, writable, not clobbered."""
    from keyer.encode import OutputTarget, _check_writable
    from keyer.formats import FORMATS

    path = Path(job.output)
    allowed = (prof.ext, ".apng") if prof.container == "apng" else (prof.ext,)
    if path.suffix.lower() not in allowed:
        raise UsageProblem(f"{path}: --for {prof.name} writes {prof.container.upper()} "
                           f"({' or '.join(allowed)}), not '{path.suffix or path.name}'")
    fmt = FORMATS[{"webm": ".webm", "webp": ".webp", "apng": ".apng"}[prof.container]]
    _check_writable(OutputTarget(path, fmt), Path(job.input), job.overwrite)
    return path


def effects_pad(effects) -> int:
    """Room the effects draw outside the subject: displacement, shadow and outline extents."""
    pad = 0.0
    for e in effects:
        name = getattr(e, "name", "")
        if name == "displacement":
            pad += max(getattr(e, "amount", 0), getattr(e, "amount_x", 0),
                       getattr(e, "amount_y", 0))
        elif name == "drop-shadow":
            pad += getattr(e, "distance", 0) + 2 * getattr(e, "softness", 0)
        elif name == "outline":
            pad += getattr(e, "width", 0) + getattr(e, "softness", 0)
    return int(math.ceil(pad)) + (2 if pad else 0)


def plan_layout(prof: Profile, box: Box, length: Fraction, too_long: str) -> Layout:
    """The canvas, the subject's place on it, the length and speed, for the union ``box`` of a
    clip of ``length`` seconds (after any trim)."""
    y0, y1, x0, x1 = box
    cw, ch, width, height = prof.fit(x1 - x0, y1 - y0)
    speed = Fraction(1)
    limit = Fraction(prof.max_seconds).limit_denominator(1000) if prof.max_seconds else None
    if limit is not None and length > limit and too_long == "speed":
        speed = length / limit
    shown = length / speed
    if limit is not None:
        shown = min(shown, limit)
    plays = 0
    if prof.whole_seconds:
        whole = max(int(prof.min_seconds), min(int(prof.max_seconds), math.floor(shown)))
        shown = Fraction(whole)
        plays = max(1, int(prof.max_plays_seconds // whole))
    length_ms = max(1, math.floor(shown * 1000))
    return Layout((width, height), (cw, ch), ((width - cw) // 2, (height - ch) // 2), length_ms,
                  speed, plays)


def run_sticker(job, log, progress=None, info=None):
    """``keyer run --for``: key and style once, frame, search the size, check, publish."""
    from keyer import logs
    from keyer.pipeline import Meter, Run
    from keyer.plan import Plan
    from keyer.probe import probe

    prof = get_profile(job.platform)
    log = (log or logs.get_logger())
    t0 = time.perf_counter()
    final = sticker_output(job, prof)
    if job.extras:
        from keyer.stickerextras import check_extras

        check_extras(final, prof, job.overwrite)
    info = info or probe(job.input)
    declared = max((d for d in (info.declared_duration, info.duration) if d), default=None)
    limit_s = prof.max_seconds
    if job.too_long == "error" and limit_s and declared and declared > limit_s + 1e-3:
        raise InputProblem(f"{job.input}: {declared:.2f} s is longer than {prof.name}'s "
                           f"{limit_s:g} s (--too-long trim or speed fit it)")
    pad = job.pad if job.pad or not job.effects else min(2000, effects_pad(job.effects))
    work = Path(tempfile.mkdtemp(prefix=f".{final.stem}.keyer-sticker-", dir=final.parent))
    try:
        keyed_job = replace(job, output=str(work / "frames") + os.sep, platform=None, pad=pad)
        meter = Meter(log, t0)
        plan = Plan.make(keyed_job, info, log)
        log.info("job_start", **{**plan.describe(), "output": str(final),
                                 "format": f"{prof.name} ({prof.container})"})
        width, height = plan.out_size
        keyed = Spool(work / "keyed.spool", info.time_base, (width, height))
        box, frames_in = EMPTY, 0
        with Run(plan, meter, progress) as run:
            run.warm_up()
            frames = run.process(run.decode())
            first = None
            cut = (Fraction(limit_s).limit_denominator(1000) / info.time_base
                   if limit_s and job.too_long == "trim" else None)
            try:
                for frame in frames:
                    frames_in += 1
                    if first is None:
                        first = frame.pts
                        run.first_out.set()
                    start = frame.pts - first
                    if cut is not None and start >= cut:
                        break
                    duration = frame.duration
                    if cut is not None and start + duration > cut:
                        duration = int(cut - start)
                    fbox = alpha_box(frame.rgba, frame.extent)
                    y0, y1, x0, x1 = fbox
                    keyed.write(start, duration, fbox, frame.rgba[y0:y1, x0:x1])
                    box = union(box, fbox)
                    run._encoded(frames_in)
                    if job.too_long == "error" and limit_s and \
                            (start + duration) * info.time_base > limit_s + 1e-3:
                        raise InputProblem(f"{job.input}: longer than {prof.name}'s {limit_s:g} s "
                                           "(--too-long trim or speed fit it)")
            finally:
                run.first_out.set()
                frames.close()
                if run.effects is not None:
                    run.effects.close()
                keyed.close()
                done = getattr(progress, "done", None)
                if done:
                    done()
        return _fit(job, prof, log, t0, final, info, plan, run, keyed, box, frames_in, work,
                    pad)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _fit(job, prof, log, t0, final, info, plan, run, keyed, box, frames_in, work, pad):
    """After keying: frame, search, check, publish (a failure here is logged as the keying's
    is, by ``Run``)."""
    try:
        return _fit_unlogged(job, prof, log, t0, final, info, plan, run, keyed, box, frames_in,
                             work, pad)
    except BaseException as exc:
        from keyer.errors import KeyerError

        code = exc.exit_code if isinstance(exc, KeyerError) else 130 \
            if isinstance(exc, KeyboardInterrupt) else 1
        log.error("job_failed", stage="sticker", frame=frames_in,
                  error=str(exc) or type(exc).__name__, exit_code=code)
        raise


def _fit_unlogged(job, prof, log, t0, final, info, plan, run, keyed, box, frames_in, work, pad):
    from keyer.files import publish
    from keyer.memory import peak_rss_mb
    from keyer.pipeline import Result
    from keyer.stickercheck import check

    if box == EMPTY or keyed.count == 0:
        raise InputProblem(f"{job.input}: nothing is left after keying (every frame is "
                           "transparent); check --key and --similarity")
    length = keyed.end * info.time_base
    layout = plan_layout(prof, box, length, job.too_long)
    spool = frame_spool(keyed, layout, box, work)
    (work / "keyed.spool").unlink()
    # the clip's own rate, as the sticker shows it (faster with --too-long speed)
    src_fps = keyed.count / float(length) * float(layout.speed) if length else MAX_FPS
    fps0 = min(src_fps, prof.max_fps or MAX_FPS, MAX_FPS)
    if prof.frames:   # LINE: 5..20 frames in all
        seconds = layout.length_ms / 1000
        fps0 = min(max(fps0, prof.frames[0] / seconds), prof.frames[1] / seconds)
    log.info("sticker_plan", platform=prof.name, container=prof.container,
             subject_box=list(box), pad=pad, canvas=list(layout.canvas),
             content=list(layout.content), offset=list(layout.offset),
             scale=round(layout.content[0] / max(1, box[3] - box[2]), 4),
             source_s=round(float(length), 4), length_s=layout.length_ms / 1000,
             too_long=job.too_long, speed=round(float(layout.speed), 4),
             fps=round(fps0, 3), plays=layout.plays, limit_bytes=prof.limit_bytes,
             spool_bytes=spool.bytes, frames_spooled=spool.count)
    prior = None
    if prof.codec == "apng":
        # lossless APNG packs about like the spool's own zlib: a first guess that spares
        # an encode at a quality far from the one that fits
        frames = len(grid(layout.length_ms, fps0)) - 1
        prior = Attempt(0.0, fps0, 1.0, int(0.8 * spool.bytes * frames / spool.count),
                        None)
    search = Search(spool, layout, prof, work, log, job.encode.threads or 0, prior)
    chosen = search.run(fps0)
    problems = check(chosen.path, prof)
    if problems:
        raise OutputProblem(f"{final}: keyer's own check failed, not published: "
                            + "; ".join(problems))
    log.info("sticker_chosen", attempt=search.attempts.index(chosen) + 1,
             encodes=len(search.attempts), knob=search.knob.name,
             value=search.knob.value(chosen.x), fps=round(chosen.fps, 3),
             scale=chosen.scale, bytes=chosen.bytes, share=round(chosen.bytes / prof.limit_bytes, 4))
    if final.exists() and not job.overwrite:
        raise OutputProblem(f"{final}: appeared while keyer was running; not replaced")
    out = publish(chosen.path, final)
    if job.extras:
        from keyer.stickerextras import write_extras

        write_extras(spool, layout, prof, final, job.overwrite, log, work)
    elapsed = time.perf_counter() - t0
    result = Result(out, frames_in, keyed.count, elapsed, run.stats.damaged_packets,
                    run.stats.dropped_frames, peak_rss_mb(), plan.estimate_mb)
    log.info("job_end", frames=frames_in, frames_out=keyed.count,
             elapsed_s=round(elapsed, 4), fps=round(result.fps, 3),
             damaged_packets=run.stats.damaged_packets,
             dropped_frames=run.stats.dropped_frames, kernels_compiled=0,
             encodes=len(search.attempts), bytes=chosen.bytes)
    return result


def frame_spool(keyed: Spool, layout: Layout, box: Box, work: Path,
                name: str = "canvas.spool") -> Spool:
    """Spool B: each keyed frame cut to the union ``box``, scaled to the content size and
    placed on the canvas (only its own box is stored)."""
    y0, y1, x0, x1 = box
    cw, ch = layout.content
    ox, oy = layout.offset
    width, height = layout.canvas
    out = Spool(work / name, keyed.time_base, (width, height))
    try:
        for start, duration, rgba in keyed.read():
            scaled = resize_rgba(rgba[y0:y1, x0:x1], cw, ch)
            sbox = alpha_box(scaled)
            if sbox == EMPTY:
                out.write(start, duration, EMPTY, scaled[:0, :0])
                continue
            sy0, sy1, sx0, sx1 = sbox
            out.write(start, duration, (sy0 + oy, sy1 + oy, sx0 + ox, sx1 + ox),
                      scaled[sy0:sy1, sx0:sx1])
    finally:
        out.close()
    return out
