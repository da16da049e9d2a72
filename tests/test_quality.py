"""Matte quality against ground truth, beside a naive RGB-distance key and FFmpeg's chromakey.

Each sample kind is rendered at 1280x720 (12 frames), encoded as H.264 4:2:0 like the shipped
samples, keyed through the pipeline's key stage, and scored on every second frame against the
exact alpha it was made from: mean absolute error (0..255 levels) over the frame, and over the
edge band (where the true alpha is fractional, grown by 2 px). Thresholds are set from what was
measured here (green: MAE 0.37, edge 19.8; blue: MAE 0.45, edge 24.0), with a little headroom.
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
