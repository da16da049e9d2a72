"""The spools of ``keyer run --for PLATFORM`` (``keyer.sticker``): keyed frames on disk,
lossless, and the plan that frames and times them on a platform's canvas.

Spool A holds each keyed frame cut to its own alpha box; spool B (``frame_spool``) each frame
cut to the union of those boxes and scaled to the canvas's content size. Both are
zlib-compressed RGBA in a file beside the output, read back one frame at a time: memory stays
bounded by the frame size. ``Layout`` says where the subject goes on the canvas and when each
output frame starts (whole milliseconds); ``timeline`` turns a spool into that grid's frames.
"""
from __future__ import annotations

import math
import struct
import zlib
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np

from keyer.frame import EMPTY, Box


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
