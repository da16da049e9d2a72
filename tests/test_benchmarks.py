"""The benches' own parts: the headroom bench's arithmetic and simulated pipeline, and how
``make bench`` counts a clip's frames (the benches themselves run in ``make headroom`` and
``make bench``, not here)."""
from __future__ import annotations

import time

import av
import pytest

import benchmarks.bench as bench
from benchmarks.bench import count_frames
from benchmarks.headroom import calibrate, most_work, simulate, spin
from tests.clips import make_clip


def test_most_work_interpolates_between_the_last_point_above_the_bar_and_the_next():
    points = [(0, 1.17), (10, 0.98), (20, 0.84), (30, 0.66)]
    assert most_work(points, 0.90) == pytest.approx(10 + 10 * (0.98 - 0.90) / (0.98 - 0.84))
    assert most_work(points, 0.75) == pytest.approx(20 + 10 * (0.84 - 0.75) / (0.84 - 0.66))


def test_most_work_takes_the_last_point_at_the_bar_when_ratios_wobble():
    # noise: 10 ms measured faster than 0 ms; the bound is the last point still at the bar
    assert most_work([(20, 0.85), (0, 0.85), (10, 0.90)], 0.90) == 10


def test_most_work_is_none_below_the_bar_and_the_largest_work_when_all_reach_it():
    assert most_work([(0, 0.85), (10, 0.80)], 0.90) is None
    assert most_work([(0, 1.2), (10, 1.0)], 0.90) == 10


def test_spin_costs_the_cpu_time_calibrated_for_it():
    per_ms = calibrate()
    t = time.thread_time()
    spin(int(20 * per_ms))
    spent_ms = (time.thread_time() - t) * 1000
    assert 20 <= spent_ms * 1.02     # calibrated on the fastest try: never much less than asked
    assert spent_ms < 20 * 5         # and not wildly more (a loaded machine slows it down)


@pytest.mark.parametrize("fmt", [".webm", ".mp4"])
def test_simulated_pipeline_encodes_every_frame_in_order(green_clip, tmp_path, fmt):
    out = tmp_path / f"sim{fmt}"
    with av.open(str(green_clip)) as c:
        frames_in = sum(1 for _ in c.decode(video=0))
    result = simulate(str(green_clip), str(out), fmt, 2.0, 1)
    assert result["frames"] == frames_in
    assert result["fps"] > 0
    with av.open(str(out)) as c:
        vs = c.streams.video[0]
        pts = [f.pts for f in c.decode(vs)]
    assert len(pts) == frames_in and pts == sorted(pts)


def test_bench_counts_a_clips_frames_without_decoding(tmp_path):
    assert count_frames(make_clip(tmp_path / "c.mp4", 7, width=64, height=48)) == 7
    assert count_frames(make_clip(tmp_path / "d.webm", 5, width=64, height=48, codec="libvpx-vp9")) == 5


def test_bench_runs_the_cases_in_reverse_every_other_rep(monkeypatch, tmp_path):
    ran = []
    monkeypatch.setattr(bench, "cases", lambda src, fmt, tmp, frames: {n: n for n in ("floor", "key", "all")})

    def measure(case, tmp, frames):
        ran.append(case)
        return {"fps": {"floor": 40.0, "key": 30.0, "all": 20.0}[case] + len(ran) / 100}
    monkeypatch.setattr(bench, "measure", measure)
    rows = bench.bench_clip(tmp_path / "c.mp4", ".webm", 3, tmp_path, frames=10)
    assert ran == ["floor", "key", "all", "all", "key", "floor", "floor", "key", "all"]
    assert rows["key"]["fps"] == 30.05      # the median of its three runs (30.02, 30.05, 30.08)
    assert rows["key"]["vs_floor"] == 30.05 / rows["floor"]["fps"]
