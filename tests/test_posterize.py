"""posterize-time: exact grouping, held pictures and total duration."""
from __future__ import annotations

import math
from fractions import Fraction

import pytest

from keyer.posterize import posterize_time
from keyer.errors import UsageProblem
from keyer.frame import Frame


def frames(pts, tb=Fraction(1, 24), last=None):
    out = []
    for i, p in enumerate(pts):
        dur = (pts[i + 1] - p) if i + 1 < len(pts) else (last or 1)
        out.append(Frame(index=i, pts=p, duration=dur, time_base=tb, source=f"pic{i}"))
    return out


def test_24_to_12_halves_and_keeps_duration():
    src = frames(list(range(24)))
    out = list(posterize_time(src, 12))
    assert len(out) == 12
    assert [f.pts for f in out] == list(range(0, 24, 2))
    assert all(f.duration == 2 and f.covers == 2 for f in out)
    assert [f.source for f in out] == [f"pic{i}" for i in range(0, 24, 2)]
    assert sum(f.duration for f in out) == sum(f.duration for f in src)


def test_30_to_12_shows_the_frame_current_at_each_boundary():
    tb = Fraction(1, 30)
    src = frames(list(range(30)), tb)
    out = list(posterize_time(src, 12))
    # brute force: at each source frame's time t, the picture current at floor(t*12)/12
    for f in src:
        t = f.pts * tb
        boundary = Fraction(math.floor(t * 12), 12)
        current = max(g.index for g in src if g.pts * tb <= boundary)
        shown = [o for o in out if o.pts <= f.pts][-1]
        assert shown.source == f"pic{current}", (f.index, shown.source, current)
    assert sum(o.duration for o in out) == 30
    assert sum(o.covers for o in out) == 30


def test_variable_frame_rate_keeps_total_duration():
    src = frames([0, 1, 2, 5, 6, 10, 11, 17], last=3)
    out = list(posterize_time(src, 8))
    assert out[0].pts == 0
    assert sum(o.duration for o in out) == sum(f.duration for f in src)
    assert out[-1].end_pts == src[-1].end_pts


def test_rate_above_source_passes_every_frame():
    src = frames(list(range(10)))
    out = list(posterize_time(src, 48))
    assert [o.source for o in out] == [f.source for f in src]


def test_bad_rate_is_refused_eagerly():
    with pytest.raises(UsageProblem):
        posterize_time(iter([]), 0)


def test_closes_upstream():
    closed = []

    def gen():
        try:
            yield from frames(list(range(10)))
        finally:
            closed.append(True)

    stage = posterize_time(gen(), 12)
    next(stage)
    stage.close()
    assert closed == [True]
