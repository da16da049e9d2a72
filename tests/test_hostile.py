"""Hostile inputs and faults: every case ends in a documented way, nothing lost or left over.

The corpus is generated here from a small valid clip; each row names the input class, the exit
code keyer must end with, and a fragment of its one-line message (README: "Hostile inputs").
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import av
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import keyer
from keyer.errors import KeyerError
from tests.clips import make_clip
from tests.conftest import ROOT, run_cli


def truncated(src: Path, dst: Path, keep: float) -> Path:
    data = src.read_bytes()
    dst.write_bytes(data[: int(len(data) * keep)])
    return dst


def corrupt_middle(src: Path, dst: Path) -> Path:
    data = bytearray(src.read_bytes())
    rng = np.random.default_rng(3)
    start = len(data) // 3
    data[start:start + len(data) // 4] = rng.integers(0, 256, len(data) // 4, dtype=np.uint8).tobytes()
    dst.write_bytes(bytes(data))
    return dst


def two_video_streams(dst: Path) -> Path:
    with av.open(str(dst), "w") as c:
        streams = []
        for _ in range(2):
            s = c.add_stream("libx264", rate=24)
            s.width, s.height, s.pix_fmt = 64, 48, "yuv420p"
            streams.append(s)
        for i in range(6):
            for s in streams:
                f = av.VideoFrame.from_ndarray(np.full((48, 64, 3), (0, 177, 64), np.uint8), format="rgb24")
                f.pts = i
                for p in s.encode(f.reformat(format="yuv420p")):
                    c.mux(p)
        for s in streams:
            for p in s.encode(None):
                c.mux(p)
    return dst


def audio_only(dst: Path) -> Path:
    with av.open(str(dst), "w") as c:
        s = c.add_stream("aac", rate=48000)
        s.layout = "stereo"
        for k in range(10):
            fr = av.AudioFrame.from_ndarray(np.zeros((2, 1024), np.float32), format="fltp", layout="stereo")
            fr.sample_rate, fr.pts = 48000, k * 1024
            for p in s.encode(fr):
                c.mux(p)
        for p in s.encode(None):
            c.mux(p)
    return dst


def png_image(dst: Path) -> Path:
    import cv2

    cv2.imwrite(str(dst.with_suffix(".png")), np.zeros((32, 32, 3), np.uint8))
    os.replace(dst.with_suffix(".png"), dst)
    return dst


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    d = tmp_path_factory.mktemp("hostile")
    good = make_clip(d / "good.mp4", 12, width=64, height=48)
    (d / "list.txt").write_text(f"file '{good}'\n")
    cases = {
        "truncated_half": (truncated(good, d / "half.mp4", 0.5), {3}, None),
        "truncated_header": (truncated(good, d / "head.mp4", 0.02), {3}, None),
        "bit_rot": (corrupt_middle(good, d / "rot.mp4"), {0, 3}, None),
        "empty": (d / "empty.mp4", {3}, "empty file"),
        "text": (d / "notes.mp4", {3}, "not a video"),
        "audio_only": (audio_only(d / "audio.m4a"), {3}, "audio-only"),
        "still_image": (png_image(d / "picture.mp4"), {3}, None),
        "one_frame": (make_clip(d / "one.mp4", 1), {0}, None),
        "two_video_streams": (two_video_streams(d / "two.mkv"), {0}, None),
        "tiny_2x2": (make_clip(d / "tiny.mp4", 3, width=2, height=2, pix_fmt="yuv444p"), {0}, None),
        "tall_16x900": (make_clip(d / "tall.mp4", 3, width=16, height=900), {0}, None),
        "hls_playlist": (d / "play.m3u8", {3}, None),
        "concat_script": (d / "list.ffconcat", {3}, None),
        "directory": (d, {3}, "directory"),
        "missing": (d / "nope.mp4", {3}, "no such file"),
    }
    (d / "empty.mp4").write_bytes(b"")
    (d / "notes.mp4").write_text("hello\n" * 100)
    (d / "play.m3u8").write_text(f"#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXTINF:1,\n{good}\n#EXT-X-ENDLIST\n")
    (d / "list.ffconcat").write_text(f"ffconcat version 1.0\nfile '{good}'\n")
    return cases


CASES = ["truncated_half", "truncated_header", "bit_rot", "empty", "text", "audio_only", "still_image",
         "one_frame", "two_video_streams", "tiny_2x2", "tall_16x900", "hls_playlist", "concat_script",
         "directory", "missing"]


@pytest.mark.parametrize("name", CASES)
def test_hostile_input_ends_as_documented(corpus, tmp_path, name):
    src, codes, fragment = corpus[name]
    before = src.read_bytes() if src.is_file() else None
    t = time.monotonic()
    proc = run_cli("run", src, "-o", tmp_path / "out.webm", timeout=60)
    assert time.monotonic() - t < 60
    assert proc.returncode in codes, proc.stderr
    assert "Traceback" not in proc.stderr
    if proc.returncode:
        errors = [line for line in proc.stderr.splitlines() if line.startswith("keyer: error:")]
        assert len(errors) == 1
        if fragment:
            assert fragment in errors[0]
        assert os.listdir(tmp_path) == []
    else:
        assert os.listdir(tmp_path) == ["out.webm"]
    if before is not None:
        assert src.read_bytes() == before                 # inputs are never modified
    probe = run_cli("probe", src, timeout=60)
    assert "Traceback" not in probe.stderr and probe.returncode in {0, 3}


def test_megapixel_limit_suggests_a_size_and_fit_uses_it(tmp_path):
    src = make_clip(tmp_path / "big.mp4", 3, width=320, height=180)
    proc = run_cli("run", src, "-o", tmp_path / "o.webm", "--max-megapixels", "0.01")
    assert proc.returncode == 3
    assert "320x180 is 0.1 megapixels" in proc.stderr and "132x74" in proc.stderr
    env_proc = subprocess.run([sys.executable, "-m", "keyer", "run", str(src), "-o", str(tmp_path / "e.webm")],
                              capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT),
                                                                   "KEYER_MAX_MEGAPIXELS": "0.01"})
    assert env_proc.returncode == 3
    ok = run_cli("run", src, "-o", tmp_path / "o.webm", "--max-megapixels", "0.01", "--fit")
    assert ok.returncode == 0, ok.stderr
    from tests.readback import stream_facts

    facts = stream_facts(tmp_path / "o.webm")
    assert (facts["width"], facts["height"]) == (132, 74)


def test_max_duration(tmp_path, green_clip):
    proc = run_cli("run", green_clip, "-o", tmp_path / "o.webm", "--max-duration", "0.2")
    assert proc.returncode == 3 and "longer than --max-duration" in proc.stderr


def test_unwritable_output_folder(tmp_path, green_clip):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        if os.access(locked, os.W_OK):
            pytest.skip("running as a user who can write anywhere (root)")
        proc = run_cli("run", green_clip, "-o", locked / "o.webm")
        assert proc.returncode == 4 and "not writable" in proc.stderr
    finally:
        locked.chmod(0o700)


def test_paths_with_spaces_and_unicode(tmp_path, green_clip):
    folder = tmp_path / "dossier été 🎬"
    folder.mkdir()
    src = folder / "clip vert.mp4"
    src.write_bytes(green_clip.read_bytes())
    proc = run_cli("run", src, "-o", folder / "sortie ünïcode.webm")
    assert proc.returncode == 0, proc.stderr
    assert (folder / "sortie ünïcode.webm").stat().st_size > 0


@pytest.mark.parametrize("sig, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_signals_stop_cleanly(tmp_path, sig, code):
    src = make_clip(tmp_path / "long.mp4", 240, width=320, height=240)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    log = tmp_path / "log.jsonl"
    proc = subprocess.Popen([sys.executable, "-m", "keyer", "run", str(src), "-o", str(out_dir / "o.mov"),
                             "--log-file", str(log), "-q", "--gc-every", "1"],
                            stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)},
                            # a suite run in the background (nohup, `&`) ignores SIGINT, and
                            # children inherit that: give keyer the default disposition
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 300        # a cold Numba cache compiles first (~1 min, loaded)
    while time.monotonic() < deadline:
        if log.exists() and '"frame_sample"' in log.read_text():
            break
        time.sleep(0.05)
    assert '"frame_sample"' in log.read_text(), "the job never reached its frames"
    sent = time.monotonic()
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=30)
    assert time.monotonic() - sent < 3.0
    assert proc.returncode == code, err
    assert "Traceback" not in err
    assert os.listdir(out_dir) == []
    last = log.read_text().splitlines()[-1]
    assert '"event":"job_aborted"' in last and f'"exit_code":{code}' in last


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(offset=st.floats(0.0, 1.0), length=st.integers(1, 4000), seed=st.integers(0, 2**16))
def test_random_corruption_never_crashes(tmp_path_factory, offset, length, seed):
    d = tmp_path_factory.mktemp("fuzz")
    good = make_clip(d / "good.mp4", 8, width=64, height=48)
    data = bytearray(good.read_bytes())
    start = int(offset * (len(data) - 1))
    chunk = np.random.default_rng(seed).integers(0, 256, length, dtype=np.uint8).tobytes()
    data[start:start + length] = chunk[: len(data) - start]
    bad = d / "bad.mp4"
    bad.write_bytes(bytes(data))
    out = d / "out"
    out.mkdir()
    t = time.monotonic()
    try:
        keyer.run(bad, out / "o.webm")
        assert os.listdir(out) == ["o.webm"]
    except KeyerError as exc:
        assert exc.exit_code in (3, 4)
        assert os.listdir(out) == []
    assert time.monotonic() - t < 30
