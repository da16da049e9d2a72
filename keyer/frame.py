"""The unit that flows through the pipeline: one picture with its own time."""
from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import numpy as np

Box = tuple[int, int, int, int]   # half-open (y0, y1, x0, x1); empty when y0 >= y1
EMPTY: Box = (0, 0, 0, 0)


@dataclass(slots=True)
class Frame:
    """One picture and its timing.

    ``pts`` and ``duration`` are integers in ``time_base`` units and are never recomputed from
    an fps float. Before keying, ``source`` holds the decoded ``av.VideoFrame`` and ``rgba`` is
    None; after keying ``rgba`` is an (H, W, 4) uint8 straight-alpha array (possibly a pooled
    buffer: a stage that keeps a frame past its own ``next()`` must copy it) and ``source`` is
    dropped. The planar key (``keyer.stages.PlanarKeyStage``) leaves ``rgba`` None and sets
    ``video`` instead: the encoder-ready ``av.VideoFrame`` in the output's pixel format.
    ``covers`` counts the source frames a held image stands for (posterize-time). ``extent``,
    when known, is a box ``(y0, y1, x0, x1)`` (half-open) outside which ``rgba`` is all zero.
    """

    index: int
    pts: int
    duration: int
    time_base: Fraction
    source: Any = None
    rgba: np.ndarray | None = None
    video: Any = None
    covers: int = 1
    extent: Box | None = None

    @property
    def time(self) -> float:
        return float(self.pts * self.time_base)

    @property
    def end_pts(self) -> int:
        return self.pts + self.duration
