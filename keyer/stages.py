"""The map stages between decode and encode: key (with rotation and padding) and effects.

Each is bound once per job: it allocates a small ring of output buffers up front and reuses them
frame after frame. A ring of ``n`` buffers is safe while at most ``n - 1`` frames it produced are
still alive downstream (the pipeline sizes rings from its queue depths).
"""
from __future__ import annotations

from typing import Sequence

import cv2
import numpy as np

from keyer.colour import ToRGBA
from keyer.frame import Frame
from keyer.keying import Keyer, KeySettings

_ROTATE = {90: cv2.ROTATE_90_COUNTERCLOCKWISE, 180: cv2.ROTATE_180, 270: cv2.ROTATE_90_CLOCKWISE}


class Ring:
    """``n`` preallocated (H, W, 4) uint8 buffers handed out in turn."""

    def __init__(self, n: int, height: int, width: int) -> None:
        self.buffers = [np.zeros((height, width, 4), np.uint8) for _ in range(max(1, n))]
        self.i = 0

    def next(self) -> np.ndarray:
        buf = self.buffers[self.i]
        self.i = (self.i + 1) % len(self.buffers)
        return buf


class KeyStage:
    """Decoded picture -> keyed, upright, padded RGBA."""

    name = "key"

    def __init__(self, settings: KeySettings, width: int, height: int, rotation: int,
                 pad: int, ring: int, scale_to: tuple[int, int] | None = None) -> None:
        self.to_rgba = ToRGBA()
        self.scale_to = scale_to
        if scale_to:
            width, height = scale_to
        self.keyer = Keyer(settings, width, height)
        self.rotation = rotation % 360
        self.pad = pad
        ow, oh = (height, width) if self.rotation in (90, 270) else (width, height)
        self.out_size = (ow + 2 * pad, oh + 2 * pad)
        direct = self.rotation == 0 and pad == 0
        self.work = None if direct else np.zeros((height, width, 4), np.uint8)
        self.rotated = np.zeros((oh, ow, 4), np.uint8) if (self.rotation and pad) else None
        self.ring = Ring(ring, self.out_size[1], self.out_size[0])

    def __call__(self, frame: Frame) -> Frame:
        out = self.ring.next()
        work = out if self.work is None else self.work
        source = frame.source
        if self.scale_to:
            # --fit: swscale's area filter, once per frame, before any of our work
            source = source.reformat(width=self.scale_to[0], height=self.scale_to[1],
                                     interpolation="AREA")
        self.to_rgba(source, work)
        self.keyer(work)
        if self.work is not None:
            p = self.pad
            inner = out[p:out.shape[0] - p, p:out.shape[1] - p] if p else out
            if self.rotation and p:
                cv2.rotate(work, _ROTATE[self.rotation], dst=self.rotated)
                inner[...] = self.rotated
            elif self.rotation:
                cv2.rotate(work, _ROTATE[self.rotation], dst=out)
            else:
                inner[...] = work
        frame.rgba = out
        frame.source = None
        return frame


class EffectsStage:
    """Applies a chain of bound effects, ping-ponging through two scratch buffers."""

    name = "effects"

    def __init__(self, ops: Sequence, width: int, height: int, ring: int) -> None:
        self.ops = list(ops)
        self.scratch = [np.zeros((height, width, 4), np.uint8) for _ in range(min(2, len(ops) - 1))]
        self.ring = Ring(ring, height, width)

    def __call__(self, frame: Frame) -> Frame:
        src = frame.rgba
        t = frame.time
        last = len(self.ops) - 1
        for i, op in enumerate(self.ops):
            dst = self.ring.next() if i == last else self.scratch[i % 2]
            op(src, dst, t)
            src = dst
        frame.rgba = src
        return frame

    def close(self) -> None:
        for op in self.ops:
            op.close()
