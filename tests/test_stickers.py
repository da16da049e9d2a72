"""`keyer run --for`: every profile on hard generated clips, the size search, trimming, framing,
the by-extension WebP/APNG/GIF outputs, and a real client (headless Chromium)."""
from __future__ import annotations

import base64
import json
import shutil
import subprocess
from pathlib import Path

import av
import numpy as np
import pytest
from structlog.testing import capture_logs

import keyer
from keyer.errors import InputProblem, OutputProblem
from keyer.platforms import PROFILES
from keyer.stickercheck import check, parse_webp, read_facts, webp_frames
from tests.clips import SCREEN, make_clip
from tests.conftest import run_cli

EXT = {"webm": ".webm", "webp": ".webp", "apng": ".png"}


def textured_frames(n: int, width: int, height: int, *, tall: bool = False, boil: bool = True,
                    seed: int = 1) -> list[np.ndarray]:
    """A subject filled with colour noise (hard to compress; fresh noise each frame when
    ``boil``) moving over a green screen: an ellipse, or a tall narrow one."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width]
    tex = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    tex[..., 1] //= 3       # keep the noise away from the screen's green
    frames = []
    for i in range(n):
        if boil:
            tex = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
            tex[..., 1] //= 3
        cx = width * (0.4 + 0.2 * i / max(1, n - 1))
        rx, ry = (width * 0.08, height * 0.4) if tall else (width * 0.25, height * 0.3)
        inside = ((xx - cx) / rx) ** 2 + ((yy - height / 2) / ry) ** 2 <= 1
        img = np.empty((height, width, 3), np.uint8)
        img[...] = SCREEN
        img[inside] = tex[inside]
        frames.append(img)
    return frames


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    d = tmp_path_factory.mktemp("sticker-clips")
    return {
        # 1.25 s of boiling noise at 8 fps: over the byte limits at the best quality
        "noise": make_clip(d / "noise.mp4", textured_frames(10, 192, 144), width=192,
                           height=144, fps=8),
        # 4.5 s: longer than Telegram's, Signal's and LINE's limits
        "long": make_clip(d / "long.mp4", textured_frames(27, 96, 72, boil=False), width=96,
                          height=72, fps=6),
        # a tall, narrow subject
        "tall": make_clip(d / "tall.mp4", textured_frames(12, 128, 96, tall=True, boil=False),
                          width=128, height=96, fps=12),
    }


def sticker(clip, out, platform, **options):
    with capture_logs() as events:
        result = keyer.run(clip, out, platform=platform, **options)
    return result, events


def attempts(events):
    return [e for e in events if e["event"] == "sticker_attempt"]


@pytest.mark.parametrize("platform", list(PROFILES))
def test_every_profile_is_compliant_on_hard_content(clips, tmp_path, platform):
    prof = PROFILES[platform]
    out = tmp_path / f"s{EXT[prof.container]}"
    result, events = sticker(clips["noise"], out, platform)
    assert result.output == out and out.is_file()
    assert check(out, prof) == []
    facts = read_facts(out)
    assert facts.bytes == out.stat().st_size <= prof.limit_bytes
    if prof.canvas == "exact":
        assert (facts.width, facts.height) == (prof.width, prof.height)
    elif prof.canvas == "side":       # the subject's box is wider than tall
        assert facts.width == 512 and facts.height < 512 and facts.height % 2 == 0
    # 1.25 s of clip: LINE wants whole seconds (1 s), the others all of it
    want = 1.0 if prof.whole_seconds else 1.25
    assert facts.length == pytest.approx(want, abs=1e-9)
    tries = attempts(events)
    assert tries and [e["attempt"] for e in tries] == list(range(1, len(tries) + 1))
    chosen = [e for e in events if e["event"] == "sticker_chosen"][0]
    assert chosen["bytes"] == facts.bytes
    # where the limit binds, the search lands in 90..100 % of it; where the best quality fits
    # (Telegram's 100x100 emoji), it is the best quality
    from keyer.stickersearch import KNOBS

    knob = KNOBS[prof.codec]
    if chosen["value"] != knob.value(knob.best):
        assert 0.9 * prof.limit_bytes <= facts.bytes <= prof.limit_bytes, tries
    else:
        assert platform == "telegram-emoji" and len(tries) <= 2
    plan = [e for e in events if e["event"] == "sticker_plan"][0]
    assert plan["canvas"] == [facts.width, facts.height] and plan["platform"] == platform


def test_a_long_clip_is_trimmed_by_default_and_sped_up_on_request(clips, tmp_path):
    # Telegram's emoji: the same 3 s rule as its stickers, on a canvas cheap to encode
    out = tmp_path / "trim.webm"
    _, events = sticker(clips["long"], out, "telegram-emoji")
    facts = read_facts(out)
    assert facts.length == pytest.approx(3.0, abs=1e-9)
    assert facts.frames == 18              # 6 fps kept as filmed: 3 s of it
    plan = [e for e in events if e["event"] == "sticker_plan"][0]
    assert plan["too_long"] == "trim" and plan["speed"] == 1.0 and plan["source_s"] == 3.0
    out = tmp_path / "speed.webm"
    _, events = sticker(clips["long"], out, "telegram-emoji", too_long="speed")
    facts = read_facts(out)
    assert facts.length == pytest.approx(3.0, abs=1e-9)
    assert facts.frames == 27              # every frame of 4.5 s, shown 1.5x as fast
    assert check(out, PROFILES["telegram-emoji"]) == []
    with pytest.raises(InputProblem, match="longer than telegram-emoji's 3 s"):
        keyer.run(clips["long"], tmp_path / "no.webm", platform="telegram-emoji",
                  too_long="error")
    assert not (tmp_path / "no.webm").exists()


def test_line_plays_whole_seconds_in_5_to_20_frames(clips, tmp_path):
    out = tmp_path / "line.png"
    sticker(clips["long"], out, "line")
    facts = read_facts(out)
    assert facts.length == pytest.approx(4.0) and facts.loop == 1     # 1 play x 4 s <= 4 s
    assert 5 <= facts.frames <= 20 and check(out, PROFILES["line"]) == []


def test_a_tall_subject_is_framed_by_its_union_box(clips, tmp_path):
    out = tmp_path / "tall.webm"
    _, events = sticker(clips["tall"], out, "telegram", extras=True)
    facts = read_facts(out)
    assert facts.height == 512 and facts.width < 512 and facts.width % 2 == 0
    plan = [e for e in events if e["event"] == "sticker_plan"][0]
    y0, y1, x0, x1 = plan["subject_box"]
    assert (y1 - y0) > (x1 - x0)           # the subject's box, not the 4:3 frame
    # on WhatsApp's square canvas the tall subject is centred: transparent at the sides
    # --extras: Telegram's 100x100 thumbnail under 32 KB, WhatsApp's 96x96 tray icon
    thumb = tmp_path / "tall-thumb.webm"
    assert check(thumb, PROFILES["telegram-emoji"]) == [] and thumb.stat().st_size <= 32_000
    out = tmp_path / "tall.webp"
    sticker(clips["tall"], out, "whatsapp", extras=True)
    tray = tmp_path / "tall-tray.png"
    assert tray.stat().st_size <= 50_000
    with av.open(str(tray)) as c:
        icon = next(c.decode(video=0)).to_ndarray(format="rgba")
    assert icon.shape == (96, 96, 4) and icon[0, 0, 3] == 0 and icon[48, 48, 3] == 255
    first = next(webp_frames(parse_webp(out.read_bytes())))
    assert first.shape == (512, 512, 4)
    assert first[:, :40, 3].max() == 0 and first[:, -40:, 3].max() == 0
    assert first[256, :, 3].max() == 255


def test_nothing_is_published_when_the_self_check_fails(clips, tmp_path, monkeypatch):
    import keyer.stickercheck as sc

    monkeypatch.setattr(sc, "check", lambda path, prof: ["bytes: made up for the test"])
    out = tmp_path / "never.webm"
    with pytest.raises(OutputProblem, match="made up for the test"):
        keyer.run(clips["tall"], out, platform="telegram-emoji")
    assert list(tmp_path.iterdir()) == []    # no output, no spool, no attempt left


def test_an_existing_output_is_not_clobbered(clips, tmp_path):
    out = tmp_path / "s.webm"
    out.write_bytes(b"mine")
    proc = run_cli("run", clips["tall"], "--for", "telegram-emoji", "-o", out, "-q")
    assert proc.returncode == 4 and "already exists" in proc.stderr
    assert out.read_bytes() == b"mine" and len(list(tmp_path.iterdir())) == 1
    proc = run_cli("run", clips["tall"], "--for", "telegram", "-o", tmp_path / "s.webp", "-q")
    assert proc.returncode == 2
    assert proc.stderr.strip().startswith("keyer: error: ") and "Traceback" not in proc.stderr


# ---------------------------------------------------------------- by extension, without --for
def test_gif_has_a_transparent_background_and_an_opaque_subject(green_clip, tmp_path):
    out = tmp_path / "clip.gif"
    keyer.run(green_clip, out)
    with av.open(str(out)) as c:
        frames = [f.to_ndarray(format="rgba") for f in c.decode(video=0)]
    assert len(frames) == 12
    for f in frames:
        assert f[0, 0, 3] == 0 and f[24, :, 3].max() == 255      # corner clear, subject solid
        assert set(np.unique(f[..., 3])) <= {0, 255}              # 1-bit alpha
        # the subject's (200, 150, 120) dithered between its neighbours in the palette
        centre = f[20:28, 28:36, :3].reshape(-1, 3).astype(float).mean(axis=0)
        assert np.abs(centre - (200, 150, 120)).max() < 20, centre


# ---------------------------------------------------------------- a real client
PAGE = """<!doctype html><html><body><pre id="out">pending</pre><script>
const sources = %s;
const out = {};
let left = Object.keys(sources).length;
for (const [name, src] of Object.entries(sources)) {
  const img = new Image();
  img.onload = () => {
    const c = document.createElement("canvas");
    c.width = img.naturalWidth; c.height = img.naturalHeight;
    const g = c.getContext("2d");
    g.drawImage(img, 0, 0);
    const d = g.getImageData(0, 0, c.width, c.height).data;
    const at = (x, y) => d[(y * c.width + x) * 4 + 3];
    let opaque = 0;
    for (let i = 3; i < d.length; i += 4) if (d[i] === 255) opaque++;
    out[name] = {w: c.width, h: c.height, corner: at(2, 2), opaque: opaque};
    if (--left === 0) document.getElementById("out").textContent = "RESULT" + JSON.stringify(out);
  };
  img.onerror = () => { out[name] = "error";
    if (--left === 0) document.getElementById("out").textContent = "RESULT" + JSON.stringify(out); };
  img.src = src;
}
</script></body></html>"""


def test_chromium_shows_the_webp_and_apng_with_transparency(clips, tmp_path):
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if not chromium:
        pytest.skip("chromium not installed (`make test` installs Debian's chromium where it can)")
    files = {"webp": tmp_path / "w.webp", "apng": tmp_path / "d.png"}
    keyer.run(clips["tall"], files["webp"], platform="whatsapp")
    keyer.run(clips["tall"], files["apng"], platform="discord")
    mime = {"webp": "image/webp", "apng": "image/apng"}
    sources = {k: f"data:{mime[k]};base64," + base64.b64encode(p.read_bytes()).decode()
               for k, p in files.items()}
    page = tmp_path / "page.html"
    page.write_text(PAGE % json.dumps(sources))
    proc = subprocess.run(
        [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=5000", "--dump-dom",
         page.as_uri()], capture_output=True, text=True, timeout=120)
    assert "RESULT" in proc.stdout, proc.stderr[-2000:]
    seen = json.loads(proc.stdout.split("RESULT", 1)[1].split("<", 1)[0].replace("&quot;", '"'))
    assert seen["webp"]["w"] == seen["webp"]["h"] == 512
    assert seen["apng"]["w"] == seen["apng"]["h"] == 320
    for name in ("webp", "apng"):
        assert seen[name]["corner"] == 0                      # off the subject: transparent
        assert seen[name]["opaque"] > 0.05 * seen[name]["w"] * seen[name]["h"]   # on it: opaque


# ---------------------------------------------------------------- the spool
def test_the_spool_is_lossless_and_reading_it_holds_a_frame_or_two(tmp_path):
    import tracemalloc
    from fractions import Fraction

    from keyer.spool import Layout, Spool, timeline

    rng = np.random.default_rng(3)
    h, w, n = 48, 64, 300
    spool = Spool(tmp_path / "s.spool", Fraction(1, 24), (w, h))
    kept = {}
    for i in range(n):
        frame = np.zeros((h, w, 4), np.uint8)
        frame[10:30, 5 + i % 20:40 + i % 20] = rng.integers(0, 256, (20, 35, 4), dtype=np.uint8)
        box = (10, 30, 5 + i % 20, 40 + i % 20)
        spool.write(i, 1, box, frame[10:30, box[2]:box[3]])
        if i in (0, 123, 299):
            kept[i] = frame
    spool.close()
    assert spool.count == n and spool.end == n
    for i, (start, duration, rgba) in enumerate(spool.read()):
        assert (start, duration) == (i, 1)
        if i in kept:
            assert np.array_equal(rgba, kept[i])              # lossless, transparent elsewhere
    layout = Layout((w, h), (w, h), (0, 0), round(n / 24 * 1000), Fraction(1), 0)
    tracemalloc.start()
    count = sum(1 for _ in timeline(spool, layout, 24.0, merge=False))
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert count == n
    assert peak < 4 * h * w * 4 + 64_000     # a canvas and a decompressed record, not 300 frames
