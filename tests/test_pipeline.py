"""End to end through the library: every output format decodes back with the right frames,
timing and alpha; generators release what they own; nothing temporary is left behind."""
from __future__ import annotations

import os
from fractions import Fraction

import av
import numpy as np
import pytest

import keyer
from keyer.decode import DecodeStats, decode
from keyer.encode import EncodeSettings
from keyer.errors import InputProblem, OutputProblem
from keyer.probe import probe
from tests.clips import make_clip
from tests.readback import packet_times, read_frames, stream_facts

FORMATS = [".webm", ".mov", ".mp4"]


def leftovers(folder):
    return [n for n in os.listdir(folder) if "keyer-tmp" in n]


@pytest.mark.parametrize("ext", FORMATS)
def test_round_trip_count_timing_alpha(tmp_path, green_clip, ext):
    out = tmp_path / f"out{ext}"
    result = keyer.run(green_clip, out)
    assert result.frames_in == result.frames_out == 12
    frames = read_frames(out)
    assert len(frames) == 12
    times = [t for t, _, _ in frames]
    assert times == pytest.approx([i / 24 for i in range(12)], abs=1e-3)
    facts = stream_facts(out)
    assert facts["duration"] == pytest.approx(0.5, abs=0.01)
    assert facts["colorspace"] == 1 and facts["color_range"] == 1   # tagged BT.709 limited
    alpha = np.stack([f[..., 3] for _, _, f in frames])
    if ext == ".mp4":
        assert alpha.min() == 255                  # flattened over the background
        # the screen became the white background
        assert frames[0][2][0, 0, :3].min() > 235
    else:
        assert alpha.min() == 0 and alpha.max() == 255
        assert 0.05 < (alpha > 128).mean() < 0.9   # subject opaque, screen transparent
        corner = frames[0][2][0, 0]
        assert corner[3] <= 3                     # lossy alpha: within a few levels
    assert leftovers(tmp_path) == []


def test_webm_is_vp9_with_alpha_mode(tmp_path, green_clip):
    out = tmp_path / "o.webm"
    keyer.run(green_clip, out)
    facts = stream_facts(out)
    assert facts["codec"] == "vp9" and facts["alpha_mode"] == "1"


def test_mov_is_prores_4444_with_alpha(tmp_path, green_clip):
    out = tmp_path / "o.mov"
    keyer.run(green_clip, out)
    facts = stream_facts(out)
    assert facts["codec"] == "prores" and facts["pix_fmt"].startswith("yuva444p")


def test_mp4_background_colour(tmp_path, green_clip):
    out = tmp_path / "o.mp4"
    keyer.run(green_clip, out, encode=EncodeSettings(background="#ff0000"))
    corner = read_frames(out)[3][2][0, 0, :3].astype(int)
    assert corner[0] > 220 and corner[1] < 40 and corner[2] < 40


def test_png_sequence_folder(tmp_path, green_clip):
    out = tmp_path / "frames"
    keyer.run(green_clip, str(out) + "/")
    names = sorted(os.listdir(out))
    assert names == [f"{i:05d}.png" for i in range(1, 13)]
    import cv2

    img = cv2.imread(str(out / names[0]), cv2.IMREAD_UNCHANGED)
    assert img.shape == (48, 64, 4)
    assert img[0, 0, 3] == 0 and img[0, 0, :3].tolist() == [0, 0, 0]   # colour zeroed
    assert img[..., 3].max() == 255


def test_png_pattern(tmp_path, green_clip):
    keyer.run(green_clip, tmp_path / "seq" / "f_%03d.png")
    assert sorted(os.listdir(tmp_path / "seq"))[:2] == ["f_001.png", "f_002.png"]


@pytest.mark.parametrize("ext", [".webm", ".mov", ".mp4"])
def test_audio_is_kept_or_dropped(tmp_path, audio_clip, ext):
    out = tmp_path / f"a{ext}"
    keyer.run(audio_clip, out)
    facts = stream_facts(out)
    assert len(facts["audio"]) == 1
    assert facts["audio"][0] == ("opus" if ext == ".webm" else "aac")
    silent = tmp_path / f"s{ext}"
    keyer.run(audio_clip, silent, encode=EncodeSettings(audio=False))
    assert stream_facts(silent)["audio"] == []


def test_variable_frame_rate_timestamps_are_kept(tmp_path):
    pts = [0, 1, 2, 5, 6, 10, 11, 12]                # in 1/24 s
    src = make_clip(tmp_path / "vfr.mp4", len(pts), width=64, height=48, fps=24, pts=pts)
    out = tmp_path / "vfr.mov"
    keyer.run(src, out)
    times = [t for t, _, _ in read_frames(out)]
    assert times == pytest.approx([p / 24 for p in pts], abs=1e-3)


def test_odd_size_and_444(tmp_path):
    src = make_clip(tmp_path / "odd.mp4", 6, width=63, height=47, fps=24, pix_fmt="yuv444p")
    out = tmp_path / "odd.mov"
    keyer.run(src, out)
    frames = read_frames(out)
    assert len(frames) == 6 and frames[0][2].shape == (47, 63, 4)
    assert frames[0][2][0, 0, 3] == 0


def test_an_odd_size_to_mp4_grows_by_a_background_column_and_row(tmp_path):
    """libx264 takes even sizes only: the picture keeps every pixel and gains one transparent
    column and row, which show the background."""
    src = make_clip(tmp_path / "odd.mkv", 6, width=63, height=47, fps=24, codec="ffv1")
    out = keyer.run(src, tmp_path / "odd.mp4", encode=EncodeSettings(background="#ff0000")).output
    frames = read_frames(out)
    assert len(frames) == 6 and frames[0][2].shape[:2] == (48, 64)
    edge = np.concatenate([frames[3][2][:, 63, :3], frames[3][2][47, :, :3]]).astype(int)
    assert (edge[:, 0] > 200).all() and (edge[:, 1:] < 60).all()   # red: the background


def test_ten_bit_source(tmp_path):
    src = make_clip(tmp_path / "ten.mp4", 6, width=64, height=48, fps=24, pix_fmt="yuv420p10le")
    assert probe(src).bit_depth == 10
    frames = read_frames(keyer.run(src, tmp_path / "ten.webm").output)
    alpha = frames[2][2][..., 3]
    assert alpha.min() == 0 and alpha.max() == 255


@pytest.mark.parametrize("ext", [".mov", ".webm"])   # planar key via RGBA; straight to planes
@pytest.mark.parametrize("rotation", [90, 180, 270])
def test_rotation_metadata_gives_upright_output(tmp_path, rotation, ext):
    # an asymmetric picture: a subject block in the top-left corner of the coded frame
    frames = []
    for _ in range(4):
        f = np.zeros((48, 64, 3), np.uint8)
        f[:] = (0, 177, 64)
        f[4:20, 4:24] = (200, 150, 120)
        frames.append(f)
    src = make_clip(tmp_path / f"rot{rotation}.mp4", frames, width=64, height=48, fps=24,
                    rotation=rotation)
    info = probe(src)
    assert info.rotation == rotation
    out = read_frames(keyer.run(src, tmp_path / f"rot{rotation}{ext}").output)[0][2]
    coded = np.zeros((48, 64), np.uint8)
    coded[4:20, 4:24] = 255
    k = {90: 1, 180: 2, 270: 3}[rotation]          # counter-clockwise quarter turns
    expected = np.rot90(coded, k)
    assert out.shape[:2] == expected.shape
    assert ((out[..., 3] > 128) == (expected > 128)).mean() > 0.97


@pytest.mark.parametrize("rotation", [90, 270])
def test_rotated_source_over_a_background_image_keeps_both_upright(tmp_path, rotation):
    import cv2

    frames = []
    for _ in range(3):
        f = np.zeros((48, 64, 3), np.uint8)
        f[:] = (0, 177, 64)
        f[4:20, 4:24] = (200, 150, 120)              # subject: top-left of the coded frame
        frames.append(f)
    src = make_clip(tmp_path / "rot.mp4", frames, width=64, height=48, rotation=rotation)
    bg = np.zeros((64, 48, 3), np.uint8)             # upright 48x64: red top half, blue bottom
    bg[:32] = (0, 0, 255)                            # (BGR for OpenCV)
    bg[32:] = (255, 0, 0)
    cv2.imwrite(str(tmp_path / "bg.png"), bg)
    job = keyer.run(src, tmp_path / "o.mp4", encode=EncodeSettings(background=str(tmp_path / "bg.png")))
    out = read_frames(job.output)[0][2]
    coded = np.zeros((48, 64), bool)
    coded[4:20, 4:24] = True
    subject = np.rot90(coded, {90: 1, 270: 3}[rotation])
    assert out.shape[:2] == (64, 48)
    rgb = out[..., :3].astype(int)
    is_subject = (np.abs(rgb - (200, 150, 120)).max(-1) < 30)
    assert (is_subject == subject).mean() > 0.95
    top, bottom = rgb[:30][~subject[:30]], rgb[34:][~subject[34:]]
    assert (top[:, 0] > 200).mean() > 0.95 and (top[:, 2] < 60).mean() > 0.95      # red
    assert (bottom[:, 2] > 200).mean() > 0.95 and (bottom[:, 0] < 60).mean() > 0.95  # blue


def test_pad_grows_the_canvas(tmp_path, green_clip):
    out = keyer.run(green_clip, tmp_path / "p.mov", pad=8).output
    f = read_frames(out)[0][2]
    assert f.shape == (48 + 16, 64 + 16, 4)
    assert f[:8, :, 3].max() == 0


@pytest.mark.parametrize("output", ["o.webm", "o.mp4"])
def test_outputs_get_the_mode_a_new_file_would(tmp_path, green_clip, output):
    """Partial outputs are private (mkstemp: 0600); the finished one follows the umask."""
    import stat

    old = os.umask(0o027)
    try:
        out = keyer.run(green_clip, tmp_path / output).output
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(out).st_mode) == 0o640


def test_existing_output_is_not_clobbered(tmp_path, green_clip):
    out = tmp_path / "exists.webm"
    out.write_bytes(b"precious")
    with pytest.raises(OutputProblem, match="already exists"):
        keyer.run(green_clip, out)
    assert out.read_bytes() == b"precious"
    keyer.run(green_clip, out, overwrite=True)
    assert out.stat().st_size > 100


def test_output_equal_to_input_is_refused(tmp_path, green_clip):
    before = green_clip.read_bytes()
    with pytest.raises(OutputProblem, match="is the input"):
        keyer.run(green_clip, green_clip, overwrite=True)
    assert green_clip.read_bytes() == before


def test_failure_mid_encode_leaves_nothing(tmp_path, green_clip, monkeypatch):
    from keyer import encode

    calls = {"n": 0}
    real = encode.VideoSink.write

    def flaky(self, frame):
        calls["n"] += 1
        if calls["n"] == 5:
            raise OSError(28, "No space left on device")
        return real(self, frame)

    monkeypatch.setattr(encode.VideoSink, "write", flaky)
    with pytest.raises(OutputProblem, match="No space left on device"):
        keyer.run(green_clip, tmp_path / "full.webm")
    assert os.listdir(tmp_path) == []


class Tracking:
    """Wraps av.open to see whether every container decode opened was closed."""

    def __init__(self, monkeypatch):
        self.opened = []
        real = av.open

        def fake(*a, **k):
            c = real(*a, **k)
            self.opened.append(c)
            return c

        import keyer.probe

        monkeypatch.setattr(keyer.probe.av, "open", fake)

    def all_closed(self):
        closed = []
        for c in self.opened:
            try:
                c.streams  # noqa: B018
                _ = c.format.name
                # a closed PyAV container raises on demux
                next(iter(c.demux()))
                closed.append(False)
            except Exception:
                closed.append(True)
        return all(closed)


def test_decode_closes_container_when_exhausted_closed_or_failing(green_clip, monkeypatch):
    info = probe(green_clip)
    tr = Tracking(monkeypatch)
    assert len(list(decode(info))) == 12
    gen = decode(info)
    next(gen)
    gen.close()

    def downstream():
        for i, frame in enumerate(decode(info)):
            if i == 3:
                raise RuntimeError("downstream failed")
            yield frame

    with pytest.raises(RuntimeError):
        list(downstream())
    assert len(tr.opened) == 3 and tr.all_closed()


def test_decode_keeps_pts_and_durations(green_clip):
    info = probe(green_clip)
    stats = DecodeStats()
    frames = list(decode(info, stats))
    assert [f.index for f in frames] == list(range(12))
    step = round(1 / (Fraction(24) * info.time_base))
    assert [f.pts - frames[0].pts for f in frames] == [i * step for i in range(12)]
    assert all(f.duration == step for f in frames)
    assert stats.frames == 12 and stats.damaged_packets == 0


def test_probe_describes_the_clip(audio_clip):
    info = probe(audio_clip)
    assert (info.width, info.height) == (64, 48)
    assert info.fps == 24 and info.has_audio and info.codec == "h264"
    assert info.duration == pytest.approx(0.5, abs=0.05)


def test_probe_refuses_non_video(tmp_path):
    junk = tmp_path / "notes.mp4"
    junk.write_text("this is not a video\n" * 50)
    with pytest.raises(InputProblem, match="not a video"):
        probe(junk)


def test_library_and_cli_share_one_job(tmp_path, green_clip):
    res = keyer.run(green_clip, tmp_path / "x.webm", effects="")
    assert res.output == tmp_path / "x.webm" and res.frames_out == 12


def test_posterize_time_holds_images_with_long_durations(tmp_path, green_clip):
    out = keyer.run(green_clip, tmp_path / "p.webm", posterize_fps=12, effects="all").output
    times = packet_times(out)
    assert [float(t) for t, _ in times] == pytest.approx([i / 12 for i in range(6)], abs=1e-3)
    assert stream_facts(out)["duration"] == pytest.approx(0.5, abs=0.01)


def test_posterize_time_png_repeats_each_held_image(tmp_path, green_clip):
    import cv2

    folder = tmp_path / "seq"
    res = keyer.run(green_clip, str(folder) + "/", posterize_fps=12)
    assert res.frames_out == 6
    names = sorted(os.listdir(folder))
    assert len(names) == 12
    imgs = [cv2.imread(str(folder / n), cv2.IMREAD_UNCHANGED) for n in names]
    for k in range(0, 12, 2):
        assert np.array_equal(imgs[k], imgs[k + 1])
    assert not np.array_equal(imgs[0], imgs[2])      # the subject moves between held images


def test_effects_run_through_the_pipeline(tmp_path, green_clip):
    out = keyer.run(green_clip, tmp_path / "fx.mov", effects="outline=width=3,drop-shadow=distance=2",
                    pad=4).output
    frames = read_frames(out)
    plain = read_frames(keyer.run(green_clip, tmp_path / "plain.mov", pad=4).output)
    assert len(frames) == 12
    # outline and shadow add opaque pixels around the subject
    assert (frames[5][2][..., 3] > 128).sum() > (plain[5][2][..., 3] > 128).sum()


def test_a_stalled_decoder_is_reported_not_waited_for():
    import threading

    from keyer.threads import Stalled, prefetch

    release = threading.Event()

    def stuck():
        yield 1
        release.wait(10)          # a decoder stuck inside a call
        yield 2

    it = prefetch(stuck(), 2, "test", stall_timeout=0.3)
    assert next(it) == 1
    with pytest.raises(Stalled):
        next(it)
    release.set()


def test_prefetch_closed_before_its_first_item_stops_its_worker_and_closes_its_source():
    import threading

    from keyer.threads import prefetch

    closed = threading.Event()

    def endless():
        try:
            n = 0
            while True:
                n += 1
                yield n
        finally:
            closed.set()

    it = prefetch(endless(), 2, "test")
    it.close()                     # never iterated: the worker still stops
    assert closed.wait(5) and not it.thread.is_alive()
    with pytest.raises(StopIteration):
        next(it)


def test_hold_after_first_passes_the_first_item_and_holds_the_rest_until_go():
    import threading
    import time

    from keyer.threads import hold_after_first

    closed = threading.Event()

    def items():
        try:
            yield from range(5)
        finally:
            closed.set()

    go = threading.Event()
    it = hold_after_first(items(), go, timeout=5.0)
    assert next(it) == 0
    got = []
    worker = threading.Thread(target=lambda: got.append(next(it)))
    worker.start()
    time.sleep(0.2)
    assert got == []                     # held: the first frame is not out yet
    go.set()
    worker.join(2)
    assert got == [1] and list(it) == [2, 3, 4] and closed.is_set()
    late = hold_after_first(range(3), threading.Event(), timeout=0.05)
    assert list(late) == [0, 1, 2]       # never released: the timeout lets it go on


def test_a_failure_before_the_first_frame_stops_decoding_and_leaves_nothing(tmp_path, green_clip,
                                                                           monkeypatch):
    import threading

    from keyer.effects.base import parse_chain
    from keyer import pipeline
    from keyer.errors import UsageProblem

    tr = Tracking(monkeypatch)

    def broken(*args):
        raise UsageProblem("drop-shadow: cannot bind")

    monkeypatch.setattr(pipeline.Plan, "effects_stage", broken)
    job = pipeline.Job(input=green_clip, output=str(tmp_path / "o.webm"),
                       effects=tuple(parse_chain("drop-shadow")))
    with pytest.raises(UsageProblem, match="cannot bind"):
        pipeline.run_job(job)
    assert os.listdir(tmp_path) == []
    assert not [t for t in threading.enumerate() if t.name.startswith("keyer-")]
    assert tr.opened and tr.all_closed()


def test_an_encoder_that_will_not_open_is_a_clear_error(tmp_path, green_clip, monkeypatch):
    import dataclasses
    import threading

    from structlog.testing import capture_logs

    from keyer import encode

    from keyer.formats import PRESETS

    from keyer import pipeline, threads

    bad = {p: {"preset": "no-such-preset"} for p in PRESETS}
    monkeypatch.setitem(encode.FORMATS, ".mp4", dataclasses.replace(encode.FORMATS[".mp4"], presets=bad))
    # the key, held back until frame 0 is encoded, must be released when encoding fails: not
    # left waiting out its hold (here 30 s) while closing the pipeline gives up on its thread
    monkeypatch.setattr(pipeline, "hold_after_first",
                        lambda source, go: threads.hold_after_first(source, go, timeout=30.0))
    stuck, close = [], threads.Prefetched.close

    def noting_close(self):
        close(self)
        if self.thread.is_alive():
            stuck.append(self.thread.name)

    monkeypatch.setattr(threads.Prefetched, "close", noting_close)
    with capture_logs() as events, pytest.raises(
            OutputProblem, match=r"o\.mp4: the libx264 encoder would not open \("):
        keyer.run(green_clip, tmp_path / "o.mp4")
    assert stuck == []
    (failed,) = [e for e in events if e["event"] == "job_failed"]
    assert failed["stage"] == "encode" and failed["exit_code"] == 4
    assert os.listdir(tmp_path) == []
    assert not [t for t in threading.enumerate() if t.name.startswith("keyer-")]


@pytest.mark.parametrize("ext, effects, slow_stage", [
    (".webm", "", "encode"), (".mp4", "", "encode"),      # the planar key's encoder frames
    (".webm", "drop-shadow", "effects"),                  # the key's RGBA ring, effects behind
    (".webm", "drop-shadow", "encode"),                   # the effects' ring
])
def test_reused_frames_are_never_overwritten_while_queued(tmp_path, ext, effects, slow_stage,
                                                          monkeypatch):
    """Stages write into rings of reused frames: with a slow consumer (its queue always full)
    every picture the encoder is given must equal the one given where every frame is new.

    The pictures are compared as the sink takes them (the encoders copy a picture when it is
    sent): libx264's output for the same pictures is not the same from run to run on frames
    this small, so comparing the decoded files failed now and then under load."""
    import time

    from keyer.effects.base import parse_chain
    from keyer import encode, pipeline, stages

    frames = [np.full((48, 64, 3), (40, 200, 60), np.uint8) for _ in range(16)]
    for i, f in enumerate(frames):          # a subject that moves and changes colour
        f[10:30, 4 + 3 * i:20 + 3 * i] = (200, 40 + 10 * i, 90)
    src = make_clip(tmp_path / "moving.mp4", frames)

    def job(name):
        return pipeline.Job(input=src, output=str(tmp_path / f"{name}{ext}"),
                            effects=tuple(parse_chain(effects)) if effects else ())

    write = encode.VideoSink.write
    given: list[bytes] = []

    def recorded(self, frame):
        picture = (b"".join(bytes(p) for p in frame.video.planes) if frame.video is not None
                   else frame.rgba.tobytes())
        given.append(picture)
        return write(self, frame)

    monkeypatch.setattr(encode.VideoSink, "write", recorded)
    with monkeypatch.context() as m:
        m.setattr(pipeline, "RING", 64)      # more frames than the clip has: none reused
        fresh = pipeline.run_job(job("fresh"))
    fresh_given, given[:] = list(given), []
    owner, name = ((encode.VideoSink, "write") if slow_stage == "encode"
                   else (stages.EffectsStage, "__call__"))
    real = getattr(owner, name)

    def slow(self, frame):
        time.sleep(0.01)
        return real(self, frame)

    monkeypatch.setattr(owner, name, slow)
    ring = pipeline.run_job(job("ring"))
    assert fresh.frames_out == ring.frames_out == 16
    assert len(fresh_given) == len(given) == 16
    assert [i for i, (a, b) in enumerate(zip(fresh_given, given)) if a != b] == []
    assert len(set(fresh_given)) == 16     # every frame differs: a mix-up shows
    assert len(read_frames(tmp_path / f"ring{ext}")) == 16


@pytest.mark.parametrize("path", ["rgba", "planar-planes", "planar-rgba"])
def test_key_stage_allocates_nothing_per_frame(tmp_path, path):
    import tracemalloc

    from keyer.frame import Frame
    from keyer.keying import KeySettings
    from keyer.stages import KeyStage, PlanarKeyStage

    src = make_clip(tmp_path / "k.mp4", 8, width=160, height=120)
    info = probe(src)
    with av.open(str(src)) as c:
        pictures = list(c.decode(video=0))
    if path == "rgba":
        stage = KeyStage(KeySettings(), info.width, info.height, 0, 0, ring=3)
    else:
        pix_fmt = "yuva420p" if path == "planar-planes" else None
        stage = PlanarKeyStage(KeySettings(), info.width, info.height, pix_fmt, ring=3)

    def run(i):
        frame = stage(Frame(index=i, pts=i, duration=1, time_base=info.time_base,
                            source=pictures[i % 8]))
        assert frame.video is not None if path == "planar-planes" else frame.rgba is not None

    for i in range(3):
        run(i)
    tracemalloc.start()
    base, _ = tracemalloc.get_traced_memory()
    for i in range(3, 13):
        run(i)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak - base < 8192, f"{path} key stage allocated up to {peak - base} bytes per 10 frames"


@pytest.mark.parametrize("ext", [".webm", ".mp4"])
def test_audio_ends_with_the_video(tmp_path, audio_clip, ext):
    out = keyer.run(audio_clip, tmp_path / f"a{ext}").output
    with av.open(str(out)) as c:
        samples = sum(f.samples for f in c.decode(audio=0))
        rate = c.streams.audio[0].codec_context.sample_rate
    # 12 frames at 24 fps = 0.5 s; at most one audio frame (~21 ms) of encoder padding more
    assert 0.45 < samples / rate < 0.5 + 0.025


@pytest.mark.parametrize("make, output, options, path", [
    (dict(), "o.webm", {}, "planar"),
    (dict(), "o.mp4", {}, "planar"),
    (dict(), "o.mov", {}, "planar-rgba"),
    (dict(), "o.webm", {"effects": "drop-shadow"}, "planar-rgba"),
    (dict(), "o.webm", {"pad": 4}, "planar-rgba"),
    (dict(rotation=90), "o.webm", {}, "planar"),
    (dict(rotation=90), "o.mp4", {"pad": 2}, "planar-rgba"),
    (dict(pix_fmt="yuv444p"), "o.webm", {}, "rgba"),
    (dict(), "o.webm", {"max_megapixels": 0.002, "fit": True}, "planar"),
])
def test_each_job_takes_the_key_path_it_fits_and_logs_its_first_frame(tmp_path, make, output,
                                                                      options, path):
    from structlog.testing import capture_logs

    from keyer.pipeline import Job, run_job
    from keyer.effects.base import parse_chain

    src = make_clip(tmp_path / "src.mp4", 4, width=64, height=48, **make)
    effects = tuple(parse_chain(options.pop("effects"))) if "effects" in options else ()
    job = Job(input=src, output=str(tmp_path / output), effects=effects, **options)
    with capture_logs() as events:
        result = run_job(job)
    assert result.frames_out == 4
    (startup,) = [e for e in events if e["event"] == "startup"]
    assert startup["key_path"] == path
    names = [e["event"] for e in events]
    (first,) = [e for e in events if e["event"] == "first_frame"]
    assert names.index("startup") < names.index("first_frame") < names.index("job_end")
    assert 0 < first["elapsed_s"] < first["since_process_start_s"]


@pytest.mark.parametrize("make, output, effects", [
    (dict(width=128, height=64), "o.webm", ""),
    (dict(width=128, height=64), "o.mp4", ""),
    (dict(width=128, height=64), "o.mov", "all"),
    (dict(width=128, height=64, pix_fmt="yuv444p"), "o.webm", "outline"),
    (dict(width=64, height=48), "o.webm", ""),           # decoded rows padded (a strided layout)
    (dict(width=100, height=76), "o.mp4", ""),           # and the encoder frame's rows too
    (dict(width=48, height=32, rotation=90), "o.webm", ""),
    (dict(width=100, height=76, pix_fmt="yuv422p"), "o.mov", "outline"),
])
def test_warm_up_loads_every_kernel_the_frames_use(tmp_path, make, output, effects):
    """Compile or cache-load time belongs to the startup event, not to frame 0: in a fresh
    interpreter, no kernel gains a compiled variant once warm() has returned, whatever the
    layout of the decoded planes (rows padded or not, as the probe saw them) and of the
    encoder's frames the planar key writes."""
    src = make_clip(tmp_path / "src.mp4", 6, **make)
    assert _warm_probe(src, tmp_path / output, effects)["late"] == {}


def _warm_probe(src, out, effects):
    """Run a job in a fresh interpreter (tests/warm_probe.py) and return what it found."""
    import json
    import subprocess
    import sys

    from tests.conftest import ROOT

    proc = subprocess.run([sys.executable, str(ROOT / "tests" / "warm_probe.py"), str(src),
                           str(out), effects], capture_output=True, text=True,
                          timeout=300, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout.splitlines()[-1])


@pytest.mark.parametrize("pix_fmt, output, effects", [
    ("yuv420p", "o.webm", ""), ("yuv420p", "o.mp4", ""), ("yuv420p", "o.webm", "all"),
    ("yuv444p", "o.mov", "all"),    # 4:4:4 input: the RGBA key (planes_to_rgba, Keyer)
])
def test_a_job_runs_without_numbas_array_library(tmp_path, pix_fmt, output, effects):
    """The key's kernels (planar and RGBA) and the effects' allocate nothing, reshape nothing
    and assign no array to an array slice inside: loading them from the cache then never
    imports numba's array library (~40 ms of start-up). The first run may compile (which
    imports it); the second loads from the cache."""
    src = make_clip(tmp_path / "src.mp4", 4, width=128, height=64, pix_fmt=pix_fmt)
    _warm_probe(src, tmp_path / output, effects)
    again = _warm_probe(src, tmp_path / ("again-" + output), effects)
    assert again == {"late": {}, "array_library": False}


_CACHED_KERNEL = """
import json, sys
import numpy as np
from keyer.kernels import encode as EK
rgba = np.full((2, 3, 4), 7, np.uint8)
rgba[0, 1, 3] = 0
out = np.empty_like(rgba)
EK.zero_transparent(rgba, out)
print(json.dumps({"hits": sum(EK.zero_transparent.stats.cache_hits.values()),
                  "registries": "numba.np.linalg" in sys.modules,
                  "cache": EK.zero_transparent._cache._cache_path, "out": out.tolist()}))
"""


def _fresh_interpreter(code, cache_dir):
    import json
    import subprocess
    import sys

    from tests.conftest import ROOT

    env = {k: v for k, v in os.environ.items() if k != "NUMBA_CACHE_DIR"}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                          env={**env, "PYTHONPATH": str(ROOT), "KEYER_CACHE_DIR": str(cache_dir)})
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout.splitlines()[-1])


def test_a_kernel_loads_from_the_cache_without_numbas_compiler_set_up(tmp_path):
    """Numba would import and register all it can compile (~0.15 s) before loading a cached
    kernel; keyer._jit skips that. The first interpreter compiles (and so registers), the
    second loads from the cache without, and both compute the same."""
    first = _fresh_interpreter(_CACHED_KERNEL, tmp_path)
    second = _fresh_interpreter(_CACHED_KERNEL, tmp_path)
    assert (first["hits"], first["registries"]) == (0, True)
    assert (second["hits"], second["registries"]) == (1, False)
    expected = np.full((2, 3, 4), 7, np.uint8)
    expected[0, 1] = 0
    assert first["out"] == second["out"] == expected.tolist()


def test_the_cache_is_keyers_even_when_numba_was_imported_first(tmp_path):
    """Numba reads its cache place when imported: keyer.cache re-reads it, else a program that
    imported numba first would cache next to the source (or, installed read-only, not at all)."""
    found = _fresh_interpreter("import numba\n" + _CACHED_KERNEL, tmp_path)
    assert found["cache"].startswith(str(tmp_path / f"numba-{keyer.__version__}"))


@pytest.mark.parametrize("collecting", [True, False])
def test_a_job_leaves_garbage_collection_as_it_found_it(tmp_path, green_clip, collecting):
    import gc

    (gc.enable if collecting else gc.disable)()
    try:
        keyer.run(green_clip, tmp_path / "o.webm")
        assert gc.isenabled() is collecting
    finally:
        gc.enable()


_THREADS_LAUNCHING = '''
import sys, importlib.abc
BLOCK = {BLOCK!r}
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name in BLOCK:
            raise ImportError("no " + name + " here (as without libgomp or tbb)")
sys.meta_path.insert(0, Block())
import json, threading
import numpy as np
import numba
from keyer._jit import PARALLEL, kernel_parallel, prange

@kernel_parallel
def double(a, out):
    for i in prange(a.shape[0]):
        out[i] = 2 * a[i]

errors = []

def launch():
    try:
        a = np.arange(10000.0)
        out = np.empty_like(a)
        for _ in range(300):
            double(a, out)
        assert out[-1] == 19998.0
    except Exception as exc:    # a thread's exception would not reach the main thread
        errors.append(repr(exc))

threads = [threading.Thread(target=launch) for _ in range(3)]
for t in threads: t.start()
for t in threads: t.join()
try:
    layer = numba.threading_layer()
except ValueError:      # no parallel launch happened: none was loaded
    layer = None
print(json.dumps({{"parallel": PARALLEL, "layer": layer, "errors": errors}}))
'''


@pytest.mark.parametrize("missing", [False, True], ids=["openmp", "no-threadsafe-layer"])
def test_parallel_kernels_launched_from_several_threads_never_abort(tmp_path, missing):
    """Without OpenMP's or TBB's runtime Numba falls back to its workqueue layer, which aborts
    the process when two threads launch parallel kernels at once (the key and the encoder do):
    keyer then compiles its parallel kernels as serial ones. With OpenMP it asks for a
    thread-safe layer."""
    block = ["numba.np.ufunc.omppool", "numba.np.ufunc.tbbpool"] if missing else []
    script = tmp_path / "launch.py"      # a cached kernel needs a source file
    script.write_text(_THREADS_LAUNCHING.format(BLOCK=block))
    found = _fresh_interpreter(f"exec(compile(open({str(script)!r}).read(), {str(script)!r}, 'exec'))",
                               tmp_path)
    if missing:
        assert found == {"parallel": False, "layer": None, "errors": []}
    else:
        assert found == {"parallel": True, "layer": "omp", "errors": []}


def test_a_signal_after_the_output_is_in_place_does_not_undo_the_job(green_clip, tmp_path,
                                                                   monkeypatch):
    """SIGTERM between the rename and ``job_end`` (seen under keyer batch --ray): the output is
    complete, so the job ends as done, with its ``job_end``, not as aborted (exit 143)."""
    import signal

    from keyer.errors import Aborted
    from keyer.pipeline import Run

    record, calls = Run._record, []

    def interrupted_once(self, out):
        calls.append(out)
        if len(calls) == 1:
            assert out.exists()   # renamed into place already
            raise Aborted(signal.SIGTERM)
        return record(self, out)

    monkeypatch.setattr(Run, "_record", interrupted_once)
    out = tmp_path / "o.webm"
    result = keyer.run(green_clip, out)
    assert len(calls) == 2 and result.output == out and out.exists()
    assert result.frames_out == len(read_frames(out))
