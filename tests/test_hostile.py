"""Hostile inputs and faults: every case ends in a documented way, nothing lost or left over.

The corpus is generated here from a small valid clip; each row names the input class, the exit
code keyer must end with, and a fragment of its one-line message (docs/inputs.md).
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


# Declared length over --max-duration (#20.3): refused on what any header claims, and stopped
# when the real stream runs past the limit whatever the header said.

HOURS_90 = 90 * 3600


def stream_info(path: Path):
    from keyer.probe import probe

    return probe(path)


def quicktime_with_durations(src: Path, dst: Path, seconds: float,
                             boxes: tuple[bytes, ...] = (b"mvhd",)) -> Path:
    """``src`` (version-0 headers) with the movie/track/media headers declaring ``seconds``."""
    data = bytearray(src.read_bytes())
    movie = data.index(b"mvhd") + 4
    movie_scale = int.from_bytes(data[movie + 12:movie + 16], "big")
    for box in boxes:
        at = data.index(box) + 4             # the payload: version (0 here), flags, ...
        assert data[at] == 0
        if box == b"tkhd":                   # created, modified, track id, reserved, duration
            data[at + 20:at + 24] = int(seconds * movie_scale).to_bytes(4, "big")
        else:                                # mvhd, mdhd: created, modified, timescale, duration
            scale = int.from_bytes(data[at + 12:at + 16], "big")
            data[at + 16:at + 20] = int(seconds * scale).to_bytes(4, "big")
    dst.write_bytes(bytes(data))
    return dst


def matroska_with_duration(src: Path, dst: Path, seconds: float) -> Path:
    """``src`` with the Segment's Duration and the video track's DURATION tag set to ``seconds``."""
    import struct

    data = bytearray(src.read_bytes())
    at = data.index(b"\x44\x89\x88") + 3       # Duration element: an 8-byte float, milliseconds
    data[at:at + 8] = struct.pack(">d", seconds * 1000.0)
    tag = data.index(b"00:", data.index(b"DURATION"))   # its tag: "HH:MM:SS.nnnnnnnnn"
    h, rest = divmod(seconds, 3600)
    new = b"%02d:%02d:%012.9f" % (h, rest // 60, rest % 60)
    data[tag:tag + len(new)] = new
    dst.write_bytes(bytes(data))
    return dst


def one_error_line(proc: subprocess.CompletedProcess) -> str:
    assert "Traceback" not in proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("keyer: error:")]
    assert len(errors) == 1, proc.stderr
    return errors[0]


def test_header_declaring_90_hours_is_refused_before_decoding(tmp_path):
    two_s = make_clip(tmp_path / "two.mp4", 48, fps=24)
    bad = quicktime_with_durations(two_s, tmp_path / "ninety.mp4", HOURS_90)
    info = stream_info(bad)
    assert info.duration == pytest.approx(2.0)     # FFmpeg reports the sample table's 2 s ...
    assert info.declared_duration == pytest.approx(HOURS_90)   # ... the movie header says 90 h
    out = tmp_path / "out"
    out.mkdir()
    proc = run_cli("run", bad, "-o", out / "o.webm", "--max-duration", "60")
    assert proc.returncode == 3
    line = one_error_line(proc)
    assert "ninety.mp4" in line and "324000.0 s" in line and "--max-duration 60 s" in line
    assert os.listdir(out) == []
    assert run_cli("run", two_s, "-o", out / "o.webm", "--max-duration", "60").returncode == 0


@pytest.mark.parametrize("boxes", [(b"tkhd",), (b"mdhd",), (b"mvhd", b"tkhd", b"mdhd")])
def test_any_quicktime_header_declaring_90_hours_counts(tmp_path, boxes):
    two_s = make_clip(tmp_path / "two.mp4", 48, fps=24)
    bad = quicktime_with_durations(two_s, tmp_path / "ninety.mp4", HOURS_90, boxes)
    assert stream_info(bad).declared_duration == pytest.approx(HOURS_90)


def test_matroska_declaring_90_hours_is_refused(tmp_path):
    bad = matroska_with_duration(make_clip(tmp_path / "two.mkv", 48, fps=24), tmp_path / "n.mkv",
                                 HOURS_90)
    assert stream_info(bad).declared_duration == pytest.approx(HOURS_90)
    proc = run_cli("run", bad, "-o", tmp_path / "o.webm", "--max-duration", "60")
    assert proc.returncode == 3 and "--max-duration 60 s" in one_error_line(proc)
    assert not (tmp_path / "o.webm").exists()


def test_stream_running_past_an_under_declared_header_is_stopped(tmp_path):
    """5 s of frames whose Matroska header says 1 s: passes the check, stopped at 2 s."""
    five_s = make_clip(tmp_path / "five.mkv", 120, fps=24)
    short = matroska_with_duration(five_s, tmp_path / "short.mkv", 1.0)
    info = stream_info(short)
    assert info.declared_duration == pytest.approx(1.0) and not info.frames
    out = tmp_path / "out"
    out.mkdir()
    log = tmp_path / "log.jsonl"
    proc = run_cli("run", short, "-o", out / "o.webm", "--max-duration", "2", "--log-file", log)
    assert proc.returncode == 3
    line = one_error_line(proc)
    assert "short.mkv" in line and "runs past --max-duration 2 s" in line
    assert os.listdir(out) == []                    # nothing published, no temporary file left
    assert '"event":"job_failed"' in log.read_text()
    ok = run_cli("run", short, "-o", out / "o.webm", "--max-duration", "5")
    assert ok.returncode == 0, ok.stderr            # 119/24 s after the first frame: within 5 s


def test_decode_stops_past_max_duration_when_nothing_is_declared(tmp_path):
    from dataclasses import replace

    from keyer.decode import DecodeStats, decode
    from keyer.errors import InputProblem

    info = replace(stream_info(make_clip(tmp_path / "five.mp4", 120, fps=24)),
                   duration=None, declared_duration=None, frames=None)
    stats = DecodeStats()
    times = []
    with pytest.raises(InputProblem, match=r"five.mp4: runs past --max-duration 2 s"):
        for f in decode(info, stats, max_duration=2):
            times.append(float((f.pts - info.start_pts) * f.time_base))
    assert max(times) <= 2.0 and len(times) >= 2 * 24   # every frame up to 2 s came out
    assert len(list(decode(info, max_duration=5))) == 120


# A damaged tail or packet (#20.4): what decodes is output, what does not is counted.

def faststart_clip(dst: Path, n: int = 120) -> Path:
    """``n`` frames of 64x48 H.264 with B-frames, the index (moov) before the samples (mdat)."""
    from tests.clips import green_frames

    rng = np.random.default_rng(0)
    with av.open(str(dst), "w", options={"movflags": "faststart"}) as c:
        vs = c.add_stream("libx264", rate=24)
        vs.width, vs.height, vs.pix_fmt = 64, 48, "yuv420p"
        vs.options = {"preset": "medium", "bf": "3"}
        for i, rgb in enumerate(green_frames(n, 64, 48)):
            noisy = np.clip(rgb + rng.integers(-20, 21, rgb.shape), 0, 255).astype(np.uint8)
            f = av.VideoFrame.from_ndarray(noisy, format="rgb24").reformat(format="yuv420p")
            f.pts = i
            for p in vs.encode(f):
                c.mux(p)
        for p in vs.encode(None):
            c.mux(p)
    data = dst.read_bytes()
    assert data.index(b"moov") < data.index(b"mdat")
    return dst


def job_end(log: Path) -> dict:
    import json

    events = [json.loads(line) for line in log.read_text().splitlines()]
    return next(e for e in events if e["event"] == "job_end")


def test_truncated_faststart_mp4_outputs_what_decodes(tmp_path):
    full = faststart_clip(tmp_path / "full.mp4")
    data = full.read_bytes()
    samples = data.index(b"mdat") + 4
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[:samples + (len(data) - samples) // 20])   # 95 % of the samples gone
    info = stream_info(cut)                          # the index is intact, the first frame decodes
    assert info.frames == 120
    out = tmp_path / "out"
    out.mkdir()
    log = tmp_path / "log.jsonl"
    proc = run_cli("run", cut, "-o", out / "o.webm", "--log-file", log)
    assert proc.returncode == 0, proc.stderr
    end = job_end(log)
    assert end["frames_out"] >= 1
    assert end["damaged_packets"] >= 120 - end["frames"]   # the missing samples are counted
    assert os.listdir(out) == ["o.webm"]


def test_decoder_errors_of_any_kind_skip_one_packet(tmp_path):
    """A JPEG-LS marker inside one MJPEG frame: FFmpeg says "patches welcome", not "invalid data"."""
    src = make_clip(tmp_path / "mj.avi", 24, fps=24, codec="mjpeg", pix_fmt="yuvj420p")
    with av.open(str(src)) as c:
        pos, size = [(p.pos, p.size) for p in c.demux(c.streams.video[0]) if p.size][12]
    data = bytearray(src.read_bytes())
    sof = data.index(b"\xff\xc0", pos, pos + size)
    data[sof + 1] = 0xF7                             # SOF0 -> SOF48 (JPEG-LS) in a 4:2:0 frame
    bad = tmp_path / "bad.avi"
    bad.write_bytes(bytes(data))
    with av.open(str(bad)) as c:
        vs = c.streams.video[0]
        with pytest.raises(av.error.PatchWelcomeError):
            for p in c.demux(vs):
                p.decode()
    log = tmp_path / "log.jsonl"
    proc = run_cli("run", bad, "-o", tmp_path / "o.webm", "--log-file", log)
    assert proc.returncode == 0, proc.stderr
    end = job_end(log)
    assert (end["frames"], end["frames_out"], end["damaged_packets"]) == (23, 23, 1)


class FailingDemux:
    """A container whose demuxer fails after ``after`` packets (a read error mid-file)."""

    def __init__(self, container, after: int) -> None:
        self.container, self.after, self.closed = container, after, False

    def __getattr__(self, name):
        return getattr(self.container, name)

    def demux(self, *args):
        for i, packet in enumerate(self.container.demux(*args)):
            if i == self.after:
                raise av.error.InvalidDataError(1094995529, "Invalid data found when processing input")
            yield packet

    def close(self) -> None:
        self.closed = True
        self.container.close()


def test_demuxer_error_still_flushes_the_decoder(tmp_path, monkeypatch):
    import keyer.decode as decode_module
    from keyer.decode import DecodeStats, decode

    info = stream_info(make_clip(tmp_path / "twelve.mp4", 12, fps=24))
    opened = []

    def failing(path):
        opened.append(FailingDemux(av.open(str(path)), after=8))
        return opened[-1]

    monkeypatch.setattr(decode_module, "open_input", failing)
    stats = DecodeStats()
    frames = list(decode(info, stats, threads=4))      # frame threading holds pictures back
    assert [f.index for f in frames] == list(range(8))  # every packet read was decoded
    assert stats.damaged_packets == 12 - 8              # the 4 the index declares, never read
    assert opened[0].closed
