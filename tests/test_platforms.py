"""The platform table, and `keyer check` on files that break the rules on purpose."""
from __future__ import annotations

import struct
import zlib

import pytest

from keyer.platforms import PROFILES, profile
from keyer.stickercheck import check, parse_png, parse_webp, read_facts
from tests.conftest import run_cli


def test_the_table_has_every_platform_and_counts_bytes_the_strict_way():
    proc = run_cli("platforms")
    assert proc.returncode == 0, proc.stderr
    for name, p in PROFILES.items():
        assert any(line.startswith(name + " ") for line in proc.stdout.splitlines())
        assert p.limit_bytes == min(p.kb * 1000, p.kb * 1024) == p.kb * 1000
    assert PROFILES["telegram"].limit_bytes == 256000
    assert PROFILES["whatsapp"].limit_bytes == 500000


@pytest.mark.parametrize("name, box, want", [
    ("telegram", (300, 100), (512, 170, 512, 170)),     # wide: width 512, height even
    ("telegram", (100, 300), (170, 512, 170, 512)),     # tall
    ("telegram-emoji", (300, 100), (100, 33, 100, 100)),
    ("whatsapp", (50, 100), (256, 512, 512, 512)),      # enlarged into the exact canvas
    ("line", (400, 400), (270, 270, 270, 270)),
    ("line", (900, 300), (320, 106, 320, 106)),     # 106.7 -> the nearest even
])
def test_fit(name, box, want):
    assert PROFILES[name].fit(*box) == want


def test_unknown_platform_suggests_the_closest():
    proc = run_cli("check", "x.webm", "--for", "telegam")
    assert proc.returncode == 2
    assert proc.stderr.strip() == ("keyer: error: --for: unknown platform 'telegam'; did you "
                                   "mean 'telegram'?")


# ---------------------------------------------------------------- files broken on purpose
def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


@pytest.fixture(scope="module")
def made(tmp_path_factory, green_clip):
    """A WebP and an APNG written by extension (64x48, 12 frames at 24 fps: 0.5 s)."""
    out = tmp_path_factory.mktemp("made")
    files = {}
    for ext in ("webp", "apng"):
        path = out / f"clip.{ext}"
        proc = run_cli("run", green_clip, "-o", path, "-q")
        assert proc.returncode == 0, proc.stderr
        files[ext] = path
    return files


def test_a_small_webp_breaks_only_the_canvas_rule(made):
    assert check(made["webp"], profile("whatsapp")) == [
        "canvas 64x48, must be exactly 512x512"]


def test_broken_webp_gets_one_line_per_broken_rule(made, tmp_path):
    data = bytearray(made["webp"].read_bytes())
    anim = data.index(b"ANIM")
    data[anim + 8 + 4:anim + 8 + 6] = struct.pack("<H", 1)          # plays once
    first = data.index(b"ANMF")
    data[first + 8 + 12:first + 8 + 15] = (5).to_bytes(3, "little")  # a 5 ms frame
    bad = tmp_path / "bad.webp"
    bad.write_bytes(bytes(data))
    lines = check(bad, profile("whatsapp"))
    assert [line.split(":")[0].split(" ")[0] for line in lines] == [
        "canvas", "frame", "frame", "loop"]
    assert "frame duration: a frame lasts 5.0 ms, under 8 ms" in lines
    proc = run_cli("check", bad, "--for", "whatsapp")
    assert proc.returncode == 1
    assert proc.stdout.count("\n") == len(lines) and "Traceback" not in proc.stderr


def test_broken_apng_gets_one_line_per_broken_rule(made, tmp_path):
    data = made["apng"].read_bytes()
    png = parse_png(data)
    assert png["plays"] == 0 and png["colour"] == 6 and png["frames"] == 12
    at = data.index(b"acTL") - 4
    bad = data[:at] + _chunk(b"acTL", struct.pack(">II", 12, 2)) + data[at + 20:]
    path = tmp_path / "bad.png"
    path.write_bytes(bad)
    lines = check(path, profile("discord"))
    assert lines == ["canvas 64x48, must be exactly 320x320",
                     "loop: plays 2 time(s), must loop forever (0)"]
    # LINE: 0.5 s is under 1 s and not whole, 12 frames are within 5..20, 2 plays x 0.5 s ok
    lines = check(path, profile("line"))
    assert [line.split(":")[0] for line in lines] == [
        "canvas 64x48", "length", "length"]


def test_an_opaque_file_has_no_real_alpha(tmp_path):
    from tests.clips import make_clip

    clip = make_clip(tmp_path / "plain.mp4", 6, width=64, height=48)
    out = tmp_path / "plain.webm"
    # an H.264 clip copied as it is has no alpha: the checker sees VP9 missing, yuv420p
    proc = run_cli("check", clip, "--for", "telegram")
    assert proc.returncode == 3 and proc.stderr.startswith("keyer: error: ")
    proc = run_cli("run", clip, "-o", out, "-q", "--similarity", "0", "--softness", "0.01",
                   "--key", "#ff00ff")
    assert proc.returncode == 0, proc.stderr
    facts = read_facts(out)
    assert facts.min_alpha >= 250       # keyed against magenta: nothing became transparent
    assert f"alpha: no real transparency (alpha {facts.min_alpha}..255 over every pixel)" in \
        check(out, profile("telegram"))


def test_parse_webp_reads_what_libwebp_wrote(made):
    w = parse_webp(made["webp"].read_bytes())
    assert (w.width, w.height, w.animated, w.alpha_flag, w.loop) == (64, 48, True, True, 0)
    assert len(w.frames) == 12
    # 24 fps in whole milliseconds: 41 or 42 each; FFmpeg's last frame may lose the rounding ms
    assert {f.duration_ms for f in w.frames} == {41, 42}
    assert abs(sum(f.duration_ms for f in w.frames) - 500) <= 1


def test_a_webm_with_sound_and_the_wrong_size_breaks_two_rules(audio_clip, tmp_path):
    out = tmp_path / "loud.webm"
    proc = run_cli("run", audio_clip, "-o", out, "-q")      # by extension: audio kept (Opus)
    assert proc.returncode == 0, proc.stderr
    assert check(out, profile("telegram")) == [
        "canvas 64x48: one side must be exactly 512 and the other at most 512",
        "audio: 1 audio stream(s), must have none"]
    assert check(out, profile("telegram-emoji")) == [
        "canvas 64x48, must be exactly 100x100", "audio: 1 audio stream(s), must have none"]
