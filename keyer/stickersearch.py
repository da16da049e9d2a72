"""The size search of ``keyer run --for PLATFORM`` (``keyer.sticker``): encode attempts from
spool B until one lands within a platform's byte limit at the best quality that fits.

Each codec has a knob (VP9's crf, WebP's quality, APNG's colour step) whose ``x`` grows as the
file shrinks. A rate model ``ln(bytes) = a + b * x`` starts from a prior slope and is refitted
on each attempt's bytes; the search aims at 95 % of the limit and stops in 90..100 %. Quality
goes down first (to a floor), then the frame rate (not below ``MIN_FPS``), then, past the
floor, quality again, then the resolution where the platform allows it (LINE). Every attempt
is logged (``sticker_attempt``).
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import cv2
import numpy as np

from keyer.errors import InputProblem
from keyer.platforms import Profile
from keyer.spool import Layout, Spool, grid, resize_rgba, timeline

MIN_FPS = 12            # the frame rate is never lowered below this
AIM, LOW = 0.95, 0.90   # the search aims at 95 % of the limit and accepts 90..100 %
MAX_ATTEMPTS = 12
SCALES = (0.8, 0.64, 0.5, 0.4)   # the subject's size on the canvas, when all else fails
RATE_EXP, AREA_EXP = 0.5, 1.5    # bytes ~ fps^0.5 * scale^1.5 (see Search.expected)


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
        limit = self.limit
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
