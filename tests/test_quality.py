"""Matte quality against ground truth, beside a naive RGB-distance key and FFmpeg's chromakey.

Each sample kind is rendered at 1280x720 (12 frames), encoded as H.264 4:2:0 like the shipped
samples, keyed through the pipeline's key stage, and scored on every second frame against the
exact alpha it was made from: mean absolute error (0..255 levels) over the frame, and over the
edge band (where the true alpha is fractional, grown by 2 px). Thresholds are set from what was
measured here (green: MAE 0.37, edge 19.8; blue: MAE 0.45, edge 24.0; since issue 25: green
0.35 / 18.9 planar, 0.37 / 20.0 RGBA; blue 0.33 / 17.7 planar, 0.40 / 21.0 RGBA; with the
colour difference linear in the mix, the foreground scale and the guided filter's own fits:
green 0.29 / 15.9 planar, 0.33 / 17.9 RGBA; blue 0.27 / 14.5 planar, 0.33 / 17.5 RGBA; with the
edge unmixed: green 0.29 / 15.6, blue 0.26 / 14.1 planar), with a little headroom.

The hard set (issue 25; ``benchmarks/quality.py`` scores it larger, ``make bench-quality``): a
~50 % veil over an uneven screen, screen-coloured details inside the subject, a real gap, hair
and motion blur, on green and on blue at 640x360, beside FFmpeg's chromakey tuned against the
truth (per score, over a similarity x blend grid).
"""
from __future__ import annotations

import av
import av.filter
import cv2
import numpy as np
import pytest

from keyer.keying import KeySettings
from keyer.probe import probe
from keyer.stages import KeyStage, PlanarKeyStage
from benchmarks.quality import ffmpeg_tuned, make_hard_clip, spill
from benchmarks.quality import keyer_mattes as hard_mattes
from benchmarks.quality import score as hard_score
from samples.make_samples import SCREENS, render_frame, write_clip

W, H, N, STEP = 1280, 720, 12, 2
BARS = {"green": (0.45, 23.0), "blue": (0.55, 27.0)}


@pytest.fixture(scope="module", params=["green", "blue"])
def sample(request, tmp_path_factory):
    kind = request.param
    path = tmp_path_factory.mktemp("quality") / f"{kind}.mp4"
    write_clip(path, kind, W, H, 24, seconds=N / 24)
    truth = {i: render_frame(kind, i, W, H, 24)[1] for i in range(0, N, STEP)}
    return kind, path, truth


def score(mattes: dict[int, np.ndarray], truth: dict[int, np.ndarray]) -> tuple[float, float]:
    full, edge = [], []
    for i, gt in truth.items():
        err = np.abs(mattes[i].astype(np.float32) - gt.astype(np.float32))
        band = cv2.dilate(((gt > 0) & (gt < 255)).astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
        full.append(err.mean())
        edge.append(err[band].mean())
    return float(np.mean(full)), float(np.mean(edge))


def keyer_mattes(path, wanted, planar=False):
    """Mattes of the RGBA key stage, or of the planar one (read off its alpha plane)."""
    from keyer.colour import plane_array
    from keyer.frame import Frame

    info = probe(path)
    if planar:
        stage = PlanarKeyStage(KeySettings(), info.width, info.height, "yuva420p", None)
    else:
        stage = KeyStage(KeySettings(), info.width, info.height, 0, 0, ring=1)
    out = {}
    with av.open(str(path)) as c:
        for i, f in enumerate(c.decode(video=0)):
            keyed = stage(Frame(index=i, pts=i, duration=1, time_base=info.time_base, source=f))
            if i in wanted:
                out[i] = (plane_array(keyed.video.planes[3], np.uint8, info.width).copy() if planar
                          else keyed.rgba[..., 3].copy())
    return out


def naive_mattes(path, wanted, threshold=60.0, ramp=40.0):
    """A plain RGB-distance key: distance to the screen colour measured on the top rows."""
    out = {}
    with av.open(str(path)) as c:
        for i, f in enumerate(c.decode(video=0)):
            if i not in wanted:
                continue
            rgb = f.to_ndarray(format="rgb24").astype(np.float32)
            screen = np.median(rgb[:20].reshape(-1, 3), axis=0)
            d = np.sqrt(((rgb - screen) ** 2).sum(-1))
            out[i] = (np.clip((d - threshold) / ramp, 0, 1) * 255 + 0.5).astype(np.uint8)
    return out


def ffmpeg_mattes(path, wanted, kind, similarity=0.1, blend=0.1):
    """FFmpeg's chromakey filter (through PyAV's libavfilter) on the screen's colour."""
    colour = "0x%02X%02X%02X" % tuple(int(v) for v in SCREENS[kind])
    out = {}
    with av.open(str(path)) as c:
        vs = c.streams.video[0]
        g = av.filter.Graph()
        src = g.add_buffer(template=vs)
        ck = g.add("chromakey", f"color={colour}:similarity={similarity}:blend={blend}")
        fmt = g.add("format", "rgba")
        sink = g.add("buffersink")
        src.link_to(ck)
        ck.link_to(fmt)
        fmt.link_to(sink)
        g.configure()
        for i, f in enumerate(c.decode(video=0)):
            g.push(f)
            o = g.pull()
            if i in wanted:
                out[i] = o.to_ndarray()[..., 3].copy()
    return out


@pytest.mark.parametrize("planar", [False, True], ids=["rgba", "planar"])
def test_keyer_matte_meets_the_bar_and_beats_naive_and_ffmpeg(sample, planar):
    kind, path, truth = sample
    mae, edge = score(keyer_mattes(path, truth, planar), truth)
    print(f"{kind} {'planar' if planar else 'rgba'}: MAE {mae:.3f}, edge {edge:.2f}")
    bar_mae, bar_edge = BARS[kind]
    assert mae < bar_mae and edge < bar_edge, (mae, edge)
    n_mae, n_edge = score(naive_mattes(path, truth), truth)
    f_mae, f_edge = score(ffmpeg_mattes(path, truth, kind), truth)
    assert mae < n_mae and edge < n_edge, ((mae, edge), (n_mae, n_edge))
    assert mae < 0.85 * f_mae and edge < f_edge, ((mae, edge), (f_mae, f_edge))
    if kind == "green":   # on green the margin over the naive key is wide
        assert mae < 0.9 * n_mae and edge < 0.9 * n_edge


HARD_W, HARD_H, HARD_N, HARD_SCORED = 640, 360, 8, (3, 7)
# What the defaults measured on this set (planar / RGBA path), beside FFmpeg tuned: MAE 1.67 /
# 1.82 vs 6.91 on green, 2.97 / 3.10 vs 4.96 on blue; edge band 6.5 / 7.1 vs 13.9 on green,
# 11.6 / 12.1 vs 9.7 on blue (the edge target, 0.8x FFmpeg's, is met on green, not on
# blue: the veil is a warm white, 6 % more opaque-looking on blue than a neutral one; see
# docs/quality.md); hair error 0.09 / 0.11 on green, 0.31 / 0.30 on blue. Before faint coverage
# was kept where luma confirms it: MAE 1.71 / 1.87 and 3.00 / 3.13, hair 0.14 / 0.17 on green;
# before the plate's purity rule: edge 6.5 / 7.1 and 11.6 / 12.1; before the edge was unmixed
# with the foreground it lies on the way to: 7.0 / 7.5 and 11.9 / 12.4; before the second
# round: 13.3 / 13.9 and 14.4 / 14.5.
HARD_EDGE = {"green": 7.6, "blue": 12.8}
HARD_HAIR = 0.40


@pytest.fixture(scope="module", params=["green", "blue"])
def hard(request, tmp_path_factory):
    kind = request.param
    path = tmp_path_factory.mktemp("hard") / f"hard-{kind}.mp4"
    truth = make_hard_clip(path, kind, HARD_W, HARD_H, HARD_N, HARD_SCORED)
    anchor, _ = ffmpeg_tuned(path, truth, kind)
    return kind, path, truth, anchor


@pytest.mark.parametrize("planar", [False, True], ids=["rgba", "planar"])
def test_hard_set_defaults_beat_ffmpeg_tuned_with_no_holes_and_the_veil_kept(hard, planar):
    kind, path, truth, anchor = hard
    got = hard_score(hard_mattes(path, truth, planar=planar), truth)
    print(kind, "planar" if planar else "rgba", {k: round(v, 3) for k, v in got.items()},
          "ffmpeg tuned", {k: round(v, 3) for k, v in anchor.items()})
    assert got["mae"] <= 0.8 * anchor["mae"], (got, anchor)
    assert got["edge"] < HARD_EDGE[kind], got
    assert got["holes"] == 0 and got["specks"] == 0, got      # screen-coloured details solid
    assert got["veil"] <= 0.10, got                            # 50 % veil within 10 %
    assert got["gap"] < 0.02, got                              # the arm's loop stays open
    assert got["hair"] <= HARD_HAIR, got                       # strands keep their alpha


def test_hard_set_without_the_core_matte_or_the_plate_fails(hard):
    """What each part does: with ``--fill-holes 0`` the screen-coloured details are holes;
    with the old ramp the veil keys far from 50 %."""
    kind, path, truth, _ = hard
    no_core = hard_score(hard_mattes(path, truth, KeySettings(fill_holes=0)), truth)
    assert no_core["holes"] > 200, no_core
    old_ramp = hard_score(hard_mattes(path, truth, KeySettings(similarity=0.12, softness=0.55,
                                                               tolerance=0)), truth)
    assert old_ramp["veil"] > 0.15, old_ramp


def test_hard_set_spill_is_removed(hard):
    kind, path, truth, _ = hard
    assert spill(hard_mattes(path, truth, rgba=True), truth, kind) < 1.0


@pytest.mark.parametrize("kind", ["green", "blue"])
def test_light_smoke_on_the_hard_set_keys_at_its_alpha(kind, tmp_path, monkeypatch):
    """The set with 25 % grey smoke instead of its veil (docs/quality.md, the set varied): the
    smoke keys within 1.7 % / 3.4 % of its true alpha, because its luma is not the screen's;
    with --no-faint the ramp's start takes 6 points of coverage off it (15.6 % / 17.4 %)."""
    import samples.make_samples as ms

    monkeypatch.setattr(ms, "VEIL_ALPHA", 0.25)
    monkeypatch.setattr(ms, "VEIL", (200.0, 200.0, 200.0))
    path = tmp_path / f"smoke-{kind}.mp4"
    truth = make_hard_clip(path, kind, HARD_W, HARD_H, HARD_N, HARD_SCORED)
    got = hard_score(hard_mattes(path, truth), truth)
    assert got["veil"] <= 0.06 and got["holes"] == 0 and got["specks"] == 0, got
    off = hard_score(hard_mattes(path, truth, KeySettings(faint=False)), truth)
    assert off["veil"] > 0.12 and off["mae"] > 1.3 * got["mae"], (off, got)


@pytest.mark.parametrize("kind", ["green", "blue"])
def test_a_shadow_cast_on_the_hard_sets_screen_keys_as_screen(kind, tmp_path, monkeypatch):
    """The set with a 35 % shadow the figure casts on the screen beside it (moving with it, its
    edge soft, under part of the veil): its truth is screen. Kept (``--keep-shadows``), it keys
    as 35 % black over thousands of pixels (MAE up by 2.5); by default it keys as screen, and
    the set scores within 0.4 of its MAE without the shadow."""
    import samples.make_samples as ms

    base_path = tmp_path / f"base-{kind}.mp4"
    base_truth = make_hard_clip(base_path, kind, HARD_W, HARD_H, HARD_N, HARD_SCORED)
    base = hard_score(hard_mattes(base_path, base_truth), base_truth)
    monkeypatch.setattr(ms, "SHADOW", 0.35)
    path = tmp_path / f"shadow-{kind}.mp4"
    truth = make_hard_clip(path, kind, HARD_W, HARD_H, HARD_N, HARD_SCORED)
    got = hard_score(hard_mattes(path, truth), truth)
    kept = hard_score(hard_mattes(path, truth, KeySettings(keep_shadows=True)), truth)
    print(kind, {k: round(v, 3) for k, v in got.items()}, "kept", kept, "base", base)
    assert kept["specks"] > 5000 and kept["mae"] > base["mae"] + 2.0, (kept, base)
    assert got["specks"] < 300 and got["mae"] < base["mae"] + 0.4, (got, base)
    assert got["holes"] == 0 and got["veil"] <= 0.10, got
