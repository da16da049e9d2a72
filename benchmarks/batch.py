"""``make bench-batch``: N clips through ``keyer batch`` at ``-j 1`` and at the parallelism
admission allows; throughput (frames/s), wall time, and the peak sum of the jobs' RSS (sampled by
the driver every 50 ms) against the budget; each job's measured peak against its reservation.

    python benchmarks/batch.py [--clips 8] [--size 640x360] [--seconds 4] [--effects all]
                               [--budget 1G] [--jobs N]

Writes ``benchmarks/results/batch-<time>.json`` and prints a table.
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks import RESULTS  # noqa: E402
from benchmarks.clips import base_clip  # noqa: E402
from keyer.batch_driver import run_batch  # noqa: E402
from keyer.memory import parse_size  # noqa: E402
from keyer.settings import Job  # noqa: E402


def make_inputs(folder: Path, n: int, width: int, height: int, seconds: float) -> list[Path]:
    """``n`` copies (hard links where possible) of one rendered clip, as separate inputs."""
    src = base_clip(width, height, seconds)
    paths = []
    for i in range(n):
        p = folder / f"clip{i:02d}.mp4"
        try:
            p.hardlink_to(src)
        except OSError:
            shutil.copyfile(src, p)
        paths.append(p)
    return paths


def one_run(inputs: list[Path], work: Path, label: str, template: Job, budget: int,
            jobs: int | None) -> dict:
    out = work / label
    t = time.perf_counter()
    records, summary = run_batch(inputs, out, template, memory_budget=budget, jobs=jobs,
                                 resume=False, quiet=True)
    wall = time.perf_counter() - t
    done = [r for r in records if r["status"] == "done"]
    return {
        "label": label, "jobs_limit": summary.max_jobs, "jobs_at_once": summary.peak_running,
        "done": len(done), "failed": summary.failed + summary.refused,
        "frames": summary.frames, "drive_s": round(summary.elapsed_s, 2), "wall_s": round(wall, 2),
        "fps": round(summary.fps, 2), "budget_mb": round(summary.budget_mb),
        "peak_rss_sum_mb": round(summary.peak_rss_sum_mb, 1),
        "peak_reserved_mb": round(summary.peak_reserved_mb, 1),
        "job_peak_mb": [r["peak_rss_mb"] for r in done],
        "job_estimate_mb": [r["estimate_mb"] for r in done],
        "job_reserved_mb": [r["reserved_mb"] for r in done],
        "peak_over_estimate_max": round(max(r["peak_rss_mb"] / r["estimate_mb"] for r in done), 3)
        if done else None,
    }


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--clips", type=int, default=8)
    ap.add_argument("--size", default="640x360")
    ap.add_argument("--seconds", type=float, default=4.0)
    ap.add_argument("--effects", default="all")
    ap.add_argument("--budget", default="1G", help="the batch's memory budget")
    ap.add_argument("--jobs", type=int, default=None, help="the parallel run's -j (default: cores)")
    a = ap.parse_args(argv)
    width, height = map(int, a.size.split("x"))
    budget = parse_size(a.budget)
    template = Job(input=".", output=".", effects=a.effects)
    work = Path(tempfile.mkdtemp(prefix="keyer-bench-batch-"))
    try:
        inputs = make_inputs(work, a.clips, width, height, a.seconds)
        runs = [one_run(inputs, work, "j1", template, budget, 1),
                one_run(inputs, work, "admitted", template, budget, a.jobs)]
    finally:
        shutil.rmtree(work, ignore_errors=True)
    result = {"clips": a.clips, "size": a.size, "seconds": a.seconds, "effects": a.effects,
              "runs": runs, "speedup": round(runs[1]["fps"] / runs[0]["fps"], 2)
              if runs[0]["fps"] else None}
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"batch-{time.strftime('%Y%m%d-%H%M')}.json"
    path.write_text(json.dumps(result, indent=2))
    print(f"{a.clips} clips {a.size} {a.seconds:g} s, effects {a.effects or 'none'}, "
          f"budget {budget / 2**20:.0f} MB")
    print(f"{'run':<9} {'-j':>3} {'at once':>7} {'done':>4} {'frames':>6} {'s':>6} {'fps':>6} "
          f"{'peak sum RSS':>12} {'reserved':>8} {'peak/est':>8}")
    for r in runs:
        print(f"{r['label']:<9} {r['jobs_limit']:>3} {r['jobs_at_once']:>7} {r['done']:>4} "
              f"{r['frames']:>6} {r['drive_s']:>6} {r['fps']:>6} {r['peak_rss_sum_mb']:>9.0f} MB "
              f"{r['peak_reserved_mb']:>5.0f} MB {r['peak_over_estimate_max']:>8}")
    print(f"speed-up {result['speedup']}x; written {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
