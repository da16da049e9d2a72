"""posterize-time: show a new image only ``fps`` times a second (like AE's Posterize Time).

At time t the output shows the source frame current at ``t0 + floor((t - t0) * fps) / fps``.
Source frames are grouped by ``n = floor((pts - pts0) * time_base * fps)``, in exact Fractions;
each group becomes ONE frame that carries the picture current at the group's boundary, the pts
of the group's first frame, and the sum of the group's durations, so total duration matches
the source by construction. The picture current at the boundary is the group's first frame when
it lands exactly on the boundary, else the last frame before it (FFmpeg's ``fps`` filter rounds
to the nearest frame instead, one source frame off for 30 -> 12). At most two frames are held.
Frames of a group other than the chosen one are dropped here, before keying and effects.
"""
from __future__ import annotations

import math
from fractions import Fraction
from typing import Iterable, Iterator

from keyer.errors import UsageProblem
from keyer.frame import Frame


def posterize_time(frames: Iterable[Frame], fps: Fraction | float | int) -> Iterator[Frame]:
    """Validate ``fps`` now, then return the lazy stage."""
    rate = Fraction(fps).limit_denominator(1001000) if not isinstance(fps, Fraction) else fps
    if rate <= 0:
        raise UsageProblem(f"posterize-time: fps={fps} must be above 0")
    return _posterize(iter(frames), rate)


def _group(frame: Frame, pts0: int, rate: Fraction) -> int:
    return math.floor((frame.pts - pts0) * frame.time_base * rate)


def _boundary_reached(frame: Frame, pts0: int, n: int, rate: Fraction) -> bool:
    """True when ``frame`` starts exactly on group ``n``'s boundary time."""
    return (frame.pts - pts0) * frame.time_base * rate == n


def _held(start: Frame, shown: Frame) -> Frame:
    """A new frame that starts where ``start`` does and shows ``shown``'s picture."""
    return Frame(index=start.index, pts=start.pts, duration=start.duration,
                 time_base=start.time_base, source=shown.source, rgba=shown.rgba)


def _posterize(frames: Iterator[Frame], rate: Fraction) -> Iterator[Frame]:
    try:
        first = next(frames, None)
        if first is None:
            return
        pts0 = first.pts
        current = _held(first, first)   # the frame standing for the open group
        group = 0
        covers, end = 1, first.end_pts
        previous = first         # last source frame seen
        for frame in frames:
            n = _group(frame, pts0, rate)
            if n == group:
                covers += 1
                end = frame.end_pts
                previous = frame
                continue
            current.duration = end - current.pts
            current.covers = covers
            yield current
            # the picture current at this group's boundary: this frame if it starts exactly
            # there, else the last frame before the boundary
            shown = frame if _boundary_reached(frame, pts0, n, rate) else previous
            current = _held(frame, shown)
            group, covers, end = n, 1, frame.end_pts
            previous = frame
        current.duration = end - current.pts
        current.covers = covers
        yield current
    finally:
        close = getattr(frames, "close", None)
        if close:
            close()
