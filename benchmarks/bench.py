"""make bench: keyer's speed beside the codec floor and FFmpeg, in one run, on one machine.

For each clip (720p and 1080p, 24 fps, green sample) and output (.webm VP9+alpha, .mp4 H.264)
it times, as separate processes, the median of ``--reps`` runs of:

  floor        PyAV decode + encode of unmodified frames, same encoder settings
  key          keyer run (keying only)
  all          keyer run --effects all
  all+pt12     keyer run --effects all --posterize-time 12
  ffmpeg-key   ffmpeg chromakey + despill, same codec settings        (if ffmpeg is installed)
  ffmpeg-all   ffmpeg chromakey, despill, displace, blend multiply + addition, blurred shadow

and prints fps, the ratio to the floor and to FFmpeg, and peak RSS (the child's own high-water
mark from wait4). Results go to benchmarks/results/bench-<time>.json.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.clips import base_clip, looped  # noqa: E402
from keyer.encode import FORMATS  # noqa: E402
from keyer.probe import probe  # noqa: E402

ENV = {**os.environ, "PYTHONPATH": str(ROOT)}


def _hwm_mb(pid: int) -> float:
    """The process's own RSS high-water mark (VmHWM; wait4's ru_maxrss inherits the parent's)."""
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def timed(cmd: list[str], limit: float = 600.0) -> tuple[float, float, str]:
    """(wall seconds, peak RSS MB, stderr tail) of one child process (killed after ``limit``)."""
    t = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=ENV)
    peak = 0.0
    while proc.poll() is None:
        peak = max(peak, _hwm_mb(proc.pid))
        if time.perf_counter() - t > limit:
            proc.kill()
        time.sleep(0.02)
    wall = time.perf_counter() - t
    if proc.returncode:
        raise RuntimeError(f"{' '.join(cmd)} failed with exit code {proc.returncode}")
    return wall, peak, ""


def ffmpeg_codec_args(fmt: str) -> list[str]:
    spec = FORMATS[fmt]
    args = ["-c:v", spec.codec, "-pix_fmt", spec.pix_fmt, "-threads", "2"]
    for k, v in spec.presets["fast"].items():
        args += [f"-{k}", v]
    if spec.codec == "libvpx-vp9":
        args += ["-crf", str(spec.crf), "-b:v", "0", "-row-mt", "1"]
    elif spec.codec == "libx264":
        args += ["-crf", str(spec.crf)]
    return args


def ffmpeg_cmds(src: Path, out: str, fmt: str, w: int, h: int, frames: int) -> dict[str, list[str]]:
    ff = shutil.which("ffmpeg")
    if not ff:
        return {}
    key = "chromakey=0x28AA46:0.1:0.1,despill=type=green"
    flatten = ",format=yuv420p" if fmt == ".mp4" else ""
    codec = ffmpeg_codec_args(fmt)
    samples = ROOT / "samples"
    graph = (f"[0:v]{key},format=rgba,split=2[fg][sh];"
             f"[1:v]scale={w}:{h},format=gray,split=2[xm][ym];"
             f"[fg][xm][ym]displace=edge=blank[d];"
             f"[2:v]scale={w}:{h},format=rgba,split=2[p1][p2];"
             f"[d][p1]blend=all_mode=multiply:all_opacity=0.5[m];"
             f"[m][p2]blend=all_mode=addition:all_opacity=0.12[a];"
             f"[sh]colorchannelmixer=rr=0:gg=0:bb=0:aa=0.5,boxblur=3:1[s];"
             f"[s][a]overlay=4:4{flatten}[out]")
    return {
        "ffmpeg-key": [ff, "-v", "error", "-y", "-i", str(src), "-vf", key + (flatten or ",format=yuva420p"),
                       "-an", *codec, out],
        "ffmpeg-all": [ff, "-v", "error", "-y", "-i", str(src),
                       "-loop", "1", "-i", str(samples / "displacement.png"),
                       "-loop", "1", "-i", str(samples / "paper.png"),
                       # looped stills never end: stop after the clip's frames
                       "-filter_complex", graph, "-map", "[out]", "-frames:v", str(frames), "-an",
                       *codec, out],
    }


def cases(src: Path, fmt: str, tmp: Path, frames: int) -> dict[str, list[str]]:
    out = str(tmp / f"out{fmt}")
    keyer = [sys.executable, "-m", "keyer", "run", str(src), "-o", out, "-y", "-q"]
    info = probe(src)
    return {
        "floor": [sys.executable, str(ROOT / "benchmarks" / "floor.py"), str(src), out, fmt],
        "key": keyer,
        "all": keyer + ["--effects", "all"],
        "all+pt12": keyer + ["--effects", "all", "--posterize-time", "12"],
        **ffmpeg_cmds(src, out, fmt, info.width, info.height, frames),
    }


def metering_overhead(src: Path, tmp: Path) -> dict:
    """Share of wall time spent on logging and memory sampling at the default settings.

    One keying job writes its JSON log; the cost is (events x the measured cost of one event)
    + the sampled ``gc.collect()`` time it logged, over the job's elapsed time.
    """
    from keyer import logs, report

    log = tmp / "overhead.jsonl"
    subprocess.run([sys.executable, "-m", "keyer", "run", str(src), "-o", str(tmp / "o.webm"), "-y",
                    "-q", "--log-file", str(log)], env=ENV, check=True)
    lines = log.read_text().splitlines()
    (job,) = report.load([log])
    probe_log = tmp / "probe.jsonl"
    logs.configure(log_format="json", log_file=str(probe_log), quiet=True)
    lg = logs.get_logger(job_id="x")
    n = 2000
    t = time.perf_counter()
    for i in range(n):
        lg.info("frame_sample", frame=i, frames_total=n, stage="encode", fps=1.0, gc_collected=0, gc_ms=0.1)
    per_event = (time.perf_counter() - t) / n
    logs.close()
    cost = len(lines) * per_event + job.gc_ms / 1000
    return {"events": len(lines), "per_event_ms": round(per_event * 1000, 4),
            "gc_ms": round(job.gc_ms, 2), "elapsed_s": job.elapsed_s,
            "overhead_pct": round(100 * cost / job.elapsed_s, 3)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--sizes", default="720,1080")
    ap.add_argument("--formats", default=".webm,.mp4")
    args = ap.parse_args(argv)
    sizes = {"720": (1280, 720), "1080": (1920, 1080)}
    rows = []
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        # warm numba's cache and the OS page cache once, untimed
        warm_src = base_clip(1280, 720, 4.0)
        subprocess.run([sys.executable, "-m", "keyer", "run", str(warm_src), "-o", str(tmp / "w.webm"),
                        "-y", "-q", "--effects", "all"], env=ENV, check=True)
        for size in args.sizes.split(","):
            w, h = sizes[size]
            src = looped(base_clip(w, h, 2.0), 3)       # 6 s, 144 frames
            frames = 144
            for fmt in args.formats.split(","):
                runs = cases(src, fmt, tmp, frames)
                results = {name: [] for name in runs}
                for _ in range(args.reps):               # interleaved: noise hits all alike
                    for name, cmd in runs.items():
                        results[name].append(timed(cmd))
                med = {n: (statistics.median(r[0] for r in rs), max(r[1] for r in rs))
                       for n, rs in results.items()}
                floor_fps = frames / med["floor"][0]
                ff = med.get("ffmpeg-all") or None
                for name, (wall, rss) in med.items():
                    fps = frames / wall
                    row = {"size": f"{w}x{h}", "format": fmt, "case": name, "fps": round(fps, 2),
                           "vs_floor": round(fps / floor_fps, 3), "peak_rss_mb": round(rss, 1)}
                    ff_name = "ffmpeg-key" if name == "key" else "ffmpeg-all" if name.startswith("all") else None
                    if ff_name and ff_name in med:
                        row["vs_ffmpeg"] = round(fps / (frames / med[ff_name][0]), 3)
                    rows.append(row)
                    print(f"{row['size']:>9} {fmt:>5} {name:<10} {fps:7.2f} fps  x{row['vs_floor']:.2f} floor"
                          + (f"  x{row['vs_ffmpeg']:.2f} ffmpeg" if 'vs_ffmpeg' in row else "")
                          + f"  {rss:6.0f} MB", flush=True)
                del ff
        overhead = metering_overhead(base_clip(1280, 720, 4.0), tmp)
    print(f"metering overhead (logging + memory samples + gc, --gc-every 10): "
          f"{overhead['overhead_pct']:.2f}% of wall time ({overhead['events']} events at "
          f"{overhead['per_event_ms']:.3f} ms, gc {overhead['gc_ms']:.1f} ms in {overhead['elapsed_s']:.1f} s)")
    stamp = time.strftime("%Y%m%d-%H%M%S")
    out = ROOT / "benchmarks" / "results" / f"bench-{stamp}.json"
    out.write_text(json.dumps({"machine": f"{platform.machine()} {os.cpu_count()} cores {platform.platform()}",
                               "reps": args.reps, "rows": rows, "metering": overhead}, indent=2))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
