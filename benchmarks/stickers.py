"""make bench-stickers: every platform profile on 720p and 1080p clips (``--effects all``).

Per profile and clip it runs ``keyer run --for PROFILE`` as its own process and reports the
wall time, the number of full encodes the size search made (``sticker_attempt`` events),
bytes / limit, whether ``keyer check`` passes, and the quality: PSNR of RGBA with colour
weighted by alpha (premultiplied R, G, B and A, over the canvas) against the same sticker
encoded without a byte limit (the profile's limit lifted to 1 GB, in a process of its own),
compared frame by frame at the unlimited sticker's frame times.

Where ``sticker-convert`` is installed (``--sticker-convert PATH`` to its command, or
``sticker-convert`` on PATH: it is not one of keyer's dependencies), it converts keyer's
unlimited output for the same preset and its result is scored the same way, side by side.
Results go to benchmarks/results/stickers-<time>.json (ignored by git).
"""
from __future__ import annotations

import argparse
import json
import math
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks import RESULTS  # noqa: E402
from benchmarks.clips import base_clip  # noqa: E402
from keyer.platforms import PROFILES  # noqa: E402

EXT = {"webm": ".webm", "webp": ".webp", "apng": ".png"}
UNLIMITED = """
import sys
from dataclasses import replace
import keyer
from keyer import platforms
name = sys.argv[3]
platforms.PROFILES[name] = replace(platforms.PROFILES[name], kb=10 ** 6)
keyer.run(sys.argv[1], sys.argv[2], platform=name, effects="all", overwrite=True)
"""
# sticker-convert's presets (its --preset names) for keyer's profiles
SC_PRESET = {"telegram": "telegram", "telegram-emoji": "telegram_emoji", "whatsapp": "whatsapp",
             "signal": "signal", "discord": "discord", "line": "line", "imessage": "imessage_small"}


def frames_of(path: Path):
    """[(start s, end s)] and a generator of RGBA frames, as the checker decodes them."""
    import av

    from keyer.stickercheck import parse_webp, read_facts, webp_frames

    facts = read_facts(path)
    ends = np.cumsum(facts.durations)
    times = list(zip(np.concatenate([[0.0], ends[:-1]]), ends))
    if facts.container == "webp":
        gen = webp_frames(parse_webp(path.read_bytes()))
    else:
        def gen_av():
            with av.open(str(path)) as c:
                vs = c.streams.video[0]
                if vs.codec_context.name != "vp9":     # APNG: the demuxer's own decoder
                    for f in c.decode(vs):
                        yield f.to_ndarray(format="rgba")
                    return
                dec = av.codec.CodecContext.create("libvpx-vp9", "r")   # keeps the alpha
                for packet in c.demux(vs):
                    for f in dec.decode(packet if packet.size else None):
                        yield yuva_to_rgba(f)
        gen = gen_av()
    return times, gen


def yuva_to_rgba(frame) -> np.ndarray:
    """A decoded yuva420p frame (BT.709, limited range) as RGBA, converted here: swscale's
    yuva420p -> rgba left varying garbage in the last columns of a 100-px-wide frame (two
    conversions of identical planes differed), which would make PSNR measure swscale."""
    import cv2

    def plane(i):
        p = frame.planes[i]
        return np.frombuffer(p, np.uint8).reshape(p.height, p.line_size)[:, :p.width]

    h, w = frame.height, frame.width
    y = (plane(0).astype(np.float32) - 16) * (255 / 219)
    u, v = ((cv2.resize(plane(i), (w, h), interpolation=cv2.INTER_LINEAR).astype(np.float32)
             - 128) * (255 / 224) for i in (1, 2))
    rgb = np.stack([y + 1.5748 * v, y - 0.1873 * u - 0.4681 * v, y + 1.8556 * u], axis=-1)
    out = np.empty((h, w, 4), np.uint8)
    out[..., :3] = np.clip(rgb + 0.5, 0, 255)
    out[..., 3] = plane(3)
    return out


def premultiplied(rgba: np.ndarray) -> np.ndarray:
    f = rgba.astype(np.float64)
    f[..., :3] *= f[..., 3:4] / 255
    return f


def psnr(test: Path, ref: Path) -> float | None:
    """PSNR (dB) of premultiplied RGBA, ``test`` sampled at ``ref``'s frame times."""
    rt, rgen = frames_of(ref)
    tt, tgen = frames_of(test)
    cur, j, se, n = next(tgen, None), 0, 0.0, 0
    for (start, _), r in zip(rt, rgen):
        while j + 1 < len(tt) and tt[j + 1][0] <= start + 1e-6:
            cur, j = next(tgen, cur), j + 1
        if cur is None:
            return None
        test_frame = premultiplied(cur)
        if cur.shape != r.shape:   # another tool's canvas: compared at the reference's size
            import cv2

            test_frame = cv2.resize(test_frame, (r.shape[1], r.shape[0]),
                                    interpolation=cv2.INTER_AREA)
        se += float(np.mean((test_frame - premultiplied(r)) ** 2))
        n += 1
    if not n:
        return None
    mse = se / n
    return float("inf") if mse == 0 else 10 * math.log10(255 ** 2 / mse)


def run_keyer(clip: Path, out: Path, profile: str) -> dict:
    log = out.with_suffix(".jsonl")
    t = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "keyer", "run", str(clip), "--for", profile,
                           "-o", str(out), "--effects", "all", "-y", "-q", "--log-file",
                           str(log)], capture_output=True, text=True, cwd=ROOT)
    wall = time.perf_counter() - t
    events = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
    tries = [e for e in events if e["event"] == "sticker_attempt"]
    return {"ok": proc.returncode == 0, "error": proc.stderr.strip()[-300:], "wall_s": wall,
            "encodes": len(tries), "bytes": out.stat().st_size if out.exists() else None}


def run_sticker_convert(command: str, src: Path, out_dir: Path, profile: str) -> dict:
    in_dir = out_dir / "in"
    in_dir.mkdir(parents=True, exist_ok=True)
    shutil.copy(src, in_dir / src.name)
    t = time.perf_counter()
    proc = subprocess.run([command, "--no-confirm", "--no-progress", "--input-dir", str(in_dir),
                           "--output-dir", str(out_dir / "out"), "--preset", SC_PRESET[profile],
                           "--processes", "1"],
                          capture_output=True, text=True, timeout=900)
    wall = time.perf_counter() - t
    made = sorted(p for p in (out_dir / "out").glob("*") if p.suffix in (".webm", ".webp",
                                                                         ".png", ".apng"))
    return {"ok": proc.returncode == 0 and bool(made), "wall_s": wall,
            "path": made[0] if made else None, "error": proc.stderr.strip()[-300:]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profile", action="append", choices=list(PROFILES),
                    help="only these profiles (repeatable; default: all)")
    ap.add_argument("--size", action="append", choices=("720p", "1080p"),
                    help="only these clip sizes (default: both)")
    ap.add_argument("--seconds", type=float, default=4.0, help="clip length (default 4)")
    ap.add_argument("--sticker-convert", default=shutil.which("sticker-convert"),
                    help="sticker-convert's command (default: on PATH, if any)")
    args = ap.parse_args()
    sizes = {"720p": (1280, 720), "1080p": (1920, 1080)}
    rows = []
    work = Path(tempfile.mkdtemp(prefix="keyer-bench-stickers-"))
    try:
        for size in args.size or list(sizes):
            clip = base_clip(*sizes[size], seconds=args.seconds)
            for name in args.profile or list(PROFILES):
                prof = PROFILES[name]
                out = work / f"{size}-{name}{EXT[prof.container]}"
                row = {"clip": size, "profile": name, "limit": prof.limit_bytes,
                       **run_keyer(clip, out, name)}
                ref = work / f"{size}-{name}-unlimited{EXT[prof.container]}"
                subprocess.run([sys.executable, "-c", UNLIMITED, str(clip), str(ref), name],
                               capture_output=True, cwd=ROOT)
                from keyer.stickercheck import check

                row["compliant"] = row["ok"] and check(out, prof) == []
                row["share"] = row["bytes"] / prof.limit_bytes if row["bytes"] else None
                row["psnr_db"] = psnr(out, ref) if row["ok"] and ref.exists() else None
                if args.sticker_convert and ref.exists():
                    sc = run_sticker_convert(args.sticker_convert, ref, work / f"sc-{size}-{name}",
                                             name)
                    row["sc_wall_s"] = sc["wall_s"]
                    if sc["path"]:
                        row["sc_bytes"] = sc["path"].stat().st_size
                        row["sc_compliant"] = check(sc["path"], prof) == []
                        row["sc_psnr_db"] = psnr(sc["path"], ref)
                    else:
                        row["sc_error"] = sc["error"]
                rows.append(row)
                print(line(row), flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    ok = [r for r in rows if r["ok"]]
    if ok:
        print(f"compliant {sum(r['compliant'] for r in rows)}/{len(rows)}; median full encodes "
              f"{statistics.median(r['encodes'] for r in ok):g}; bytes/limit "
              f"{min(r['share'] for r in ok):.3f}..{max(r['share'] for r in ok):.3f}")
    RESULTS.mkdir(parents=True, exist_ok=True)
    dest = RESULTS / f"stickers-{time.strftime('%Y%m%d-%H%M%S')}.json"
    dest.write_text(json.dumps(rows, indent=2, default=str))
    print(f"wrote {dest}")


def line(r: dict) -> str:
    def f(v, spec):
        return format(v, spec) if isinstance(v, (int, float)) and v is not None else "n/a"

    text = (f"{r['clip']:>5} {r['profile']:<15} {'ok ' if r.get('compliant') else 'BAD'} "
            f"{f(r['wall_s'], '6.1f')} s  encodes {r['encodes']:>2}  bytes/limit "
            f"{f(r.get('share'), '.3f')}  PSNR {f(r.get('psnr_db'), '5.2f')} dB")
    if "sc_wall_s" in r:
        sc_share = r["sc_bytes"] / r["limit"] if r.get("sc_bytes") else None
        text += (f"  | sticker-convert (+keyer) {f(r['sc_wall_s'] + r['wall_s'], '6.1f')} s "
                 f"bytes/limit {f(sc_share, '.3f')} "
                 f"{'ok ' if r.get('sc_compliant') else 'BAD'} PSNR {f(r.get('sc_psnr_db'), '5.2f')} dB")
    if not r["ok"]:
        text += f"  error: {r['error']}"
    return text


if __name__ == "__main__":
    main()
