"""make bench: keyer's speed beside the codec floor and FFmpeg, in one run, on one machine.

For each clip (720p and 1080p, 24 fps, 6 s, green sample; or ``--clip PATH``, repeatable, for
clips of your own) and output (.webm VP9+alpha, .mp4 H.264) it runs, as separate processes,
``--reps`` times interleaved, every other rep in reverse order (medians; peak RSS: the highest):

  floor        PyAV decode + encode of unmodified frames, same encoder settings (floor.py)
  key          keyer run (keying only)
  all          keyer run --effects all
  all+pt12     keyer run --effects all --posterize-time 12
  ffmpeg-key   ffmpeg chromakey + despill, same codec settings        (if ffmpeg is installed)
  ffmpeg-all   ffmpeg chromakey, despill, displace, blend multiply + addition, blurred shadow

Per case it prints fps over the whole process and steady fps (after the first encoded frame;
n/a for FFmpeg), each as a ratio to the floor, the ratio to FFmpeg, user+sys CPU seconds and
CPU ms per clip frame (wait4), and peak RSS (VmHWM sampled while the child runs); for keyer, each
stage's busy ms per clip frame from its log. Then metering overhead, start-up (startup.py) and
the issue's bars as PASS/FAIL lines: informational, the exit status is 0 either way.
Results go to benchmarks/results/bench-<time>.json (ignored by git).
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
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks import result_path  # noqa: E402
from benchmarks.clips import base_clip, looped  # noqa: E402
from benchmarks.startup import ENV, epoch, keyer_cmd, read_log, startup  # noqa: E402
from benchmarks.startup import report as report_startup  # noqa: E402
from keyer.formats import FORMATS, encoder_options  # noqa: E402
from keyer.probe import probe  # noqa: E402

SIZES = {"720": (1280, 720), "1080": (1920, 1080)}
FRAMES = 144                                  # the 2 s base clip looped 3 times, at 24 fps
FFMPEG_TWIN = {"key": "ffmpeg-key", "all": "ffmpeg-all", "all+pt12": "ffmpeg-all"}


@dataclass(frozen=True)
class Run:
    """One finished child process."""

    wall_s: float
    cpu_s: float          # user + sys, from wait4
    peak_rss_mb: float    # VmHWM
    spawn: float          # time.time() just before the spawn, for the child's timestamps
    stdout: str


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


def timed(cmd: list[str], limit: float = 600.0) -> Run:
    """Run ``cmd`` to the end (killed after ``limit`` s); raise with its stderr tail if it fails.

    VmHWM is sampled every 20 ms while the child runs (``waitid`` with ``WNOWAIT`` sees it exit
    without reaping it); then ``wait4`` reaps it and gives its CPU time.
    """
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        spawn, t = time.time(), time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, env=ENV)
        peak = 0.0
        while os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is None:
            peak = max(peak, _hwm_mb(proc.pid))
            if time.perf_counter() - t > limit:
                proc.kill()
            time.sleep(0.02)
        wall = time.perf_counter() - t
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode:
            err.seek(0)
            tail = err.read()[-2000:].decode(errors="replace")
            raise RuntimeError(f"{' '.join(cmd)} failed with exit code {proc.returncode}\n{tail}")
        out.seek(0)
        return Run(wall, usage.ru_utime + usage.ru_stime, peak, spawn, out.read().decode())


def floor_facts(run: Run, log: Path | None) -> dict:
    """Frames and first-frame time from floor.py's JSON line."""
    out = json.loads(run.stdout.splitlines()[-1])
    return {"frames_out": out["frames"], "first_frame_s": out["first_frame_time"] - run.spawn}


def keyer_facts(run: Run, log: Path | None) -> dict:
    """Frames out, first-frame time (ours and keyer's own) and busy seconds per stage, from the log."""
    events = read_log(log)
    (first,) = events["first_frame"]
    return {"frames_out": events["job_end"][-1]["frames_out"], "first_frame_s": epoch(first) - run.spawn,
            "logged_first_frame_s": first["since_process_start_s"],
            "busy_s": {e["stage"]: e["busy_s"] for e in events["stage_end"]},
            "stage_frames": {e["stage"]: e["frames"] for e in events["stage_end"]}}


def no_facts(run: Run, log: Path | None) -> dict:
    """FFmpeg: nothing to read; whole-process figures only."""
    return {}


@dataclass(frozen=True)
class Case:
    """A command to time and how to read what it reports."""

    cmd: list[str]
    facts: Callable[[Run, Path | None], dict] = no_facts
    log: bool = False                          # keyer: a fresh --log-file per run


def ffmpeg_codec_args(fmt: str) -> list[str]:
    """FFmpeg output options matching keyer's encoder settings for ``fmt``."""
    spec = FORMATS[fmt]
    args = ["-c:v", spec.codec, "-pix_fmt", spec.pix_fmt, "-threads", "2"]
    for k, v in encoder_options(spec).items():
        args += [f"-{k}", v]
    return args


def ffmpeg_cmds(src: Path, out: str, fmt: str, w: int, h: int, frames: int) -> dict[str, Case]:
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
        "ffmpeg-key": Case([ff, "-v", "error", "-y", "-i", str(src),
                            "-vf", key + (flatten or ",format=yuva420p"), "-an", *codec, out]),
        "ffmpeg-all": Case([ff, "-v", "error", "-y", "-i", str(src),
                            "-loop", "1", "-i", str(samples / "displacement.png"),
                            "-loop", "1", "-i", str(samples / "paper.png"),
                            # looped stills never end: stop after the clip's frames
                            "-filter_complex", graph, "-map", "[out]", "-frames:v", str(frames),
                            "-an", *codec, out]),
    }


def cases(src: Path, fmt: str, tmp: Path, frames: int) -> dict[str, Case]:
    out = tmp / f"out{fmt}"
    info = probe(src)
    return {
        "floor": Case([sys.executable, str(ROOT / "benchmarks" / "floor.py"), str(src), str(out), fmt],
                      floor_facts),
        "key": Case(keyer_cmd(src, out), keyer_facts, log=True),
        "all": Case(keyer_cmd(src, out, "--effects", "all"), keyer_facts, log=True),
        "all+pt12": Case(keyer_cmd(src, out, "--effects", "all", "--posterize-time", "12"),
                         keyer_facts, log=True),
        **ffmpeg_cmds(src, str(out), fmt, info.width, info.height, frames),
    }


def measure(case: Case, tmp: Path, frames: int) -> dict:
    """Run ``case`` once and summarise it per clip frame.

    Steady fps counts the clip frames behind output frames 2..n (all of them but
    ``frames / frames_out``; posterize-time outputs fewer frames than it reads) over the wall time
    after the first encoded frame. Stage busy times overlap (stages run in threads).
    """
    log = tmp / f"{uuid.uuid4().hex}.jsonl" if case.log else None
    run = timed(case.cmd + (["--log-file", str(log)] if log else []))
    facts = case.facts(run, log)
    row = {"fps": frames / run.wall_s, "wall_s": run.wall_s, "cpu_s": run.cpu_s,
           "cpu_ms_per_frame": 1000 * run.cpu_s / frames, "peak_rss_mb": run.peak_rss_mb, **facts}
    if "first_frame_s" in facts:
        after_first = frames * (facts["frames_out"] - 1) / facts["frames_out"]
        row["steady_fps"] = after_first / (run.wall_s - facts["first_frame_s"])
    if "busy_s" in facts:
        row["stage_ms_per_frame"] = {s: 1000 * b / frames for s, b in facts["busy_s"].items()}
    return row


def medians(reps: list[dict]) -> dict:
    """Per-key medians over the reps, into nested dicts; peak RSS is the highest."""
    out = {}
    for k, v in reps[0].items():
        values = [r[k] for r in reps]
        if isinstance(v, dict):
            out[k] = medians(values)
        else:
            out[k] = max(values) if k == "peak_rss_mb" else statistics.median(values)
    return out


def ratios(row: dict, floor: dict, twin: dict | None) -> dict:
    """fps as a ratio to the floor (whole process and steady) and to the FFmpeg counterpart."""
    out = {"vs_floor": row["fps"] / floor["fps"]}
    if "steady_fps" in row:
        out["vs_floor_steady"] = row["steady_fps"] / floor["steady_fps"]
    if twin:
        out["vs_ffmpeg"] = row["fps"] / twin["fps"]
    return out


def count_frames(src: Path) -> int:
    """Video frames in ``src``: its video packets, counted without decoding."""
    import av

    with av.open(str(src)) as c:
        vs = c.streams.video[0]
        return sum(1 for p in c.demux(vs) if p.size)


def bench_clip(src: Path, fmt: str, reps: int, tmp: Path, frames: int = FRAMES) -> dict[str, dict]:
    """Every case on one clip of ``frames`` frames and one format, ``reps`` times interleaved:
    median rows by case."""
    runs = cases(src, fmt, tmp, frames)
    samples: dict[str, list] = {name: [] for name in runs}
    for rep in range(reps):                    # interleaved: noise hits all alike
        # every other rep in reverse: on this machine a run's place in the sequence moves its
        # speed by a few % (benchmarks/results/ab-20261126-1425-*.txt), so no case keeps one place
        order = list(runs.items())
        for name, case in order[::-1] if rep % 2 else order:
            samples[name].append(measure(case, tmp, frames))
    med = {name: medians(s) for name, s in samples.items()}
    return {name: {**m, **ratios(m, med["floor"], med.get(FFMPEG_TWIN.get(name, "")))}
            for name, m in med.items()}


def _f(value: float | None, spec: str) -> str:
    return "n/a" if value is None else format(value, spec)


HEADER = (f"{'size':>9} {'fmt':>5} {'case':<10} {'fps':>6} {'steady':>6}  {'x floor':>11}  "
          f"{'x ffmpeg':>8}  {'cpu s':>5} {'ms/f':>5}  {'peak MB':>7}")


def print_row(size: str, fmt: str, name: str, r: dict) -> None:
    """One table line; for keyer, a second line of busy ms per clip frame by stage."""
    vs = f"x{r['vs_floor']:.2f}/{_f(r.get('vs_floor_steady'), '.2f')}"
    print(f"{size:>9} {fmt:>5} {name:<10} {r['fps']:6.2f} {_f(r.get('steady_fps'), '6.2f'):>6}  {vs:>11}  "
          f"{_f(r.get('vs_ffmpeg'), '.2f'):>8}  {r['cpu_s']:5.1f} {r['cpu_ms_per_frame']:5.0f}  "
          f"{r['peak_rss_mb']:7.0f}", flush=True)
    if "stage_ms_per_frame" in r:
        stages = "  ".join(f"{s} {ms:.1f}" for s, ms in r["stage_ms_per_frame"].items())
        print(f"{'':>27}busy ms/frame: {stages}", flush=True)


def check(ok: bool, text: str) -> dict:
    return {"pass": bool(ok), "bar": text}


def format_bars(label: str, r: dict[str, dict]) -> list[dict]:
    """The issue's speed bars for one size and format."""
    key, all_, pt = r["key"], r["all"], r["all+pt12"]

    def work(row: dict) -> float:
        return row["busy_s"].get("key", 0.0) + row["busy_s"].get("effects", 0.0)

    bars = [
        check(key["vs_floor_steady"] >= 0.90, f"{label} key >= 0.90 x floor fps: steady "
              f"x{key['vs_floor_steady']:.2f} (whole process x{key['vs_floor']:.2f})"),
        check(all_["vs_floor_steady"] >= 0.75, f"{label} all >= 0.75 x floor fps: steady "
              f"x{all_['vs_floor_steady']:.2f} (whole process x{all_['vs_floor']:.2f})"),
    ]
    if "ffmpeg-all" in r:
        bars.append(check(all_["fps"] > r["ffmpeg-all"]["fps"], f"{label} all faster than ffmpeg-all: "
                          f"{all_['fps']:.2f} vs {r['ffmpeg-all']['fps']:.2f} fps"))
    # The work is halved by construction (half the pictures are keyed); the bar is that this
    # shows: exactly half the frames keyed, and the fps up by at least 1.5x. Busy time per
    # stage is wall time (inflated when threads share 2 cores), so it is shown, not judged.
    keyed, keyed_all = pt["stage_frames"]["key"], all_["stage_frames"]["key"]
    gain = pt["fps"] / all_["fps"]
    bars.append(check(keyed <= -(-keyed_all // 2) and gain >= 1.5,
                      f"{label} all+pt12 keys half the frames and fps >= 1.5 x all's: {keyed:.0f} of "
                      f"{keyed_all:.0f} frames keyed, fps x{gain:.2f} (key+effects busy "
                      f"x{work(pt) / work(all_):.2f})"))
    return bars


def all_bars(results: dict, size: str, start: dict) -> list[dict]:
    """Speed bars at ``size`` for each format measured, then the warm start-up bar per case."""
    bars = [b for fmt, r in results[size].items() for b in format_bars(f"{size} {fmt}", r)]
    return bars + [check(s[k] < 1.5, f"warm start-up to first frame < 1.5 s ({name}, {res}): "
                         f"{s[k]:.2f} s") for name, s in start.items()
                   for k, res in (("warm_s", "720p"), ("warm_1080_s", "1080p"))]


def metering_overhead(src: Path, tmp: Path) -> dict:
    """Share of wall time spent on logging and memory sampling at the default settings.

    One keying job writes its JSON log; the cost is (events x the measured cost of one event)
    + the sampled ``gc.collect()`` time it logged, over the job's elapsed time.
    """
    from keyer import logs, report

    log = tmp / "overhead.jsonl"
    subprocess.run(keyer_cmd(src, tmp / "o.webm", "--log-file", str(log)), env=ENV, check=True)
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


def source_stamp() -> float:
    """Newest mtime of keyer's and the effects' sources: a change mid-run reloads or recompiles kernels."""
    return max(p.stat().st_mtime for d in ("keyer", "effects") for p in (ROOT / d).rglob("*.py"))


def rounded(obj):
    """``obj`` with every float rounded to 4 decimals, for the JSON."""
    if isinstance(obj, dict):
        return {k: rounded(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [rounded(v) for v in obj]
    return round(obj, 4) if isinstance(obj, float) else obj


def table(sizes: list[str], formats: list[str], reps: int, tmp: Path,
          clips: list[Path] = ()) -> dict[str, dict]:
    """Rows by clip label (its size; with the file name for ``clips``), format and case, printed
    as they come: the generated clips at ``sizes``, or ``clips`` when given."""
    print(HEADER + "   (x floor: whole process/steady)")
    if clips:
        runs = []
        for path in clips:
            info = probe(path)
            runs.append((path, f"{info.width}x{info.height}", path.name, count_frames(path)))
    else:
        runs = [(looped(base_clip(w, h, 2.0), 3), f"{w}x{h}", None, FRAMES)
                for w, h in (SIZES[size] for size in sizes)]
    results: dict[str, dict] = {}
    for src, size, name, frames in runs:
        label = size if name is None else f"{size} {name}"
        results[label] = {}
        if name is not None:
            print(f"{name}: {frames} frames")
        for fmt in formats:
            results[label][fmt] = bench_clip(src, fmt, reps, tmp, frames)
            for case, r in results[label][fmt].items():
                print_row(size, fmt, case, r)
    return results


def print_overhead(o: dict) -> None:
    print(f"metering overhead (logging + memory samples + gc, --gc-every 10): "
          f"{o['overhead_pct']:.2f}% of wall time ({o['events']} events at "
          f"{o['per_event_ms']:.3f} ms, gc {o['gc_ms']:.1f} ms in {o['elapsed_s']:.1f} s)")


def print_bars(size: str, bars: list[dict]) -> None:
    print(f"bars (at {size}; informational):")
    for b in bars:
        print(f"  {'PASS' if b['pass'] else 'FAIL'}  {b['bar']}")


def write_json(results: dict, **extra) -> Path:
    """benchmarks/results/bench-<time>.json: the machine, one row per size, format and case, ``extra``."""
    rows = [{"size": s, "format": f, "case": n, **r}
            for s, by_fmt in results.items() for f, by_case in by_fmt.items() for n, r in by_case.items()]
    out = result_path("bench")
    out.write_text(json.dumps(rounded({
        "machine": f"{platform.machine()} {os.cpu_count()} cores {platform.platform()}",
        "rows": rows, **extra}), indent=2))
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--sizes", default="720,1080")
    ap.add_argument("--formats", default=".webm,.mp4")
    ap.add_argument("--clip", action="append", type=Path, default=[],
                    help="bench this clip instead of the generated ones (repeatable); the bars "
                         "are judged on the last")
    args = ap.parse_args(argv)
    for clip in args.clip:
        if not clip.is_file():
            ap.error(f"--clip {clip}: no such file")
    short = base_clip(1280, 720, 2.0)
    stamp = source_stamp()
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        # warm numba's cache and the OS page cache once, untimed
        subprocess.run(keyer_cmd(short, tmp / "w.webm", "--effects", "all"), env=ENV, check=True)
        results = table(sorted(args.sizes.split(","), key=int), args.formats.split(","), args.reps,
                        tmp, args.clip)
        overhead = metering_overhead(short, tmp)
    print_overhead(overhead)
    start = startup()
    report_startup(start)
    largest = list(results)[-1]                # sizes run in ascending order; else the last clip
    bars = all_bars(results, largest, start)
    print_bars(largest, bars)
    changed = source_stamp() != stamp
    if changed:
        print("warning: keyer/ or effects/ sources changed during the run: kernels may have recompiled "
              "and the figures mix versions")
    out = write_json(results, reps=args.reps, metering=overhead, startup=start, bars=bars,
                     sources_changed=changed)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
