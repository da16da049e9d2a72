"""The unit that flows through the pipeline, and what a stage and an effect agree on.

``Frame`` is one picture with its own time. An effect (``keyer.effects``) binds to a
``Geometry`` and returns a ``FrameOp``; in a chain (``keyer.stages.EffectsStage``) a ``Boxes``
carries what is known of the pictures from one effect call to the next.
"""
from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Protocol

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


@dataclass(frozen=True, slots=True)
class Geometry:
    """What an effect is bound to: the canvas it will see every frame."""

    width: int
    height: int
    fps: float = 30.0


class FrameOp(Protocol):
    """A bound effect: ``op(src, out, t)`` writes ``out`` from ``src`` (both (H, W, 4) uint8
    straight-alpha RGBA, distinct arrays) for the frame at ``t`` seconds; ``close()`` frees.
    In a chain, ``boxes`` (a ``Boxes``) says what is known of ``src`` and ``out`` and is left
    describing the output (see ``keyer.stages.EffectsStage``); without it the effect works it
    all out and writes the whole of ``out``. An op may name in ``scratch_arrays`` the
    attributes it writes before reading them every frame: in a chain they become views of one
    buffer the effects share."""

    def __call__(self, src: np.ndarray, out: np.ndarray, t: float, boxes: Boxes | None = None) -> None: ...

    def close(self) -> None: ...


@dataclass(slots=True)
class Boxes:
    """What a chain knows of the pictures around one effect call; None = not known (the whole
    frame). The effect reads all three and leaves them describing its output: ``alpha`` its
    subject's box, ``out`` the box outside which it is all zero.

    ``alpha``: the box of src's non-zero alpha, exact (effects pad it into the boxes they
    compute, and their output must not depend on how it was found).
    ``src``: src is all zero (colour and alpha) outside it.
    ``out``: what the out buffer still holds from before is all zero outside it.
    """

    alpha: Box | None = None
    src: Box | None = None
    out: Box | None = None
