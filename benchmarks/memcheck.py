"""make memcheck: peak RSS must not grow with clip length, and must stay within the baseline.

Runs ``keyer run --effects all`` on a 720p clip at two lengths (4 s and 40 s) for each output
format, each in its own process with a JSON log, then checks with ``keyer.report``:

* peak RSS of the 40 s run <= peak of the 4 s run * 1.05 + 8 MB (flat memory);
* RSS growth per 100 frames of the 40 s run < 2 MB (no leak: one lost 720p RGBA frame per
  100 frames would be 3.7 MB);
* the peak anonymous RSS (``anon_mb``: heap, frame buffers, encoder state, compiled code) <=
  benchmarks/memory-baseline.json * 1.10 + 8 MB: private memory, what each extra job adds;
* the memory ledger's unattributed private memory (``keyer.ledger``: what no owner explains)
  in the second half of the 40 s run <= its first half's + 2 MB: the leak and fragmentation
  signal does not grow with the clip (a leak keeps growing; the ledger counts the encoder's
  settling over its first frames as the encoder's). The absolute peak depends on the page cache:
  a freshly installed venv maps 100+ MB more of the libraries' files (RssFile) than a settled
  one, for the same anonymous memory, so the baseline holds the anonymous part.

``--update-baseline`` records the measured peaks (with the machine) instead of checking them.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks import result_path  # noqa: E402
from benchmarks.clips import base_clip, looped  # noqa: E402
from keyer import report  # noqa: E402

BASELINE = ROOT / "benchmarks" / "memory-baseline.json"
FORMATS = [".webm", ".mov", ".mp4", "png"]
FLAT_RATIO, FLAT_SLACK_MB, MAX_GROWTH_MB, BASELINE_SLACK = 1.05, 8.0, 2.0, 1.10
MAX_UNATTRIBUTED_GROWTH_MB = 2.0


def run(src: Path, fmt: str, workdir: Path) -> report.JobSummary:
    out = workdir / ("frames/" if fmt == "png" else f"out{fmt}")
    log = workdir / f"{src.stem}{fmt}.jsonl"
    cmd = [sys.executable, "-m", "keyer", "run", str(src), "-o", str(out), "--overwrite",
           "--effects", "all", "--log-file", str(log), "-q"]
    subprocess.run(cmd, check=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    (job,) = report.load([log])
    return job


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--update-baseline", action="store_true")
    ap.add_argument("--long", type=int, default=10, help="how many times longer the long clip is")
    args = ap.parse_args(argv)
    short = base_clip(1280, 720, 4.0)
    long = looped(short, args.long)
    baseline = json.loads(BASELINE.read_text()) if BASELINE.exists() else {"peak_rss_mb": {}}
    rows, failures = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for fmt in FORMATS:
            t = time.perf_counter()
            a = run(short, fmt, Path(tmp))
            b = run(long, fmt, Path(tmp))
            g = b.growth_per_100
            row = {"format": fmt, "short_peak_mb": round(a.peak_rss_mb, 1),
                   "long_peak_mb": round(b.peak_rss_mb, 1),
                   "long_job_peak_mb": round(b.job_peak_mb, 1),
                   "long_anon_peak_mb": round(b.peak_anon_mb or 0.0, 1), "long_frames": b.frames,
                   "growth_mb_per_100": round(g, 3) if g is not None else None,
                   "short_unattributed_mb": a.unattributed_max_mb,
                   "long_unattributed_mb": b.unattributed_max_mb,
                   "long_unattributed_late_growth_mb": (round(b.unattributed_late_growth_mb, 2)
                                                        if b.unattributed_late_growth_mb is not None
                                                        else None),
                   "long_fps": b.fps, "seconds": round(time.perf_counter() - t, 1)}
            rows.append(row)
            print(json.dumps(row), flush=True)
            if b.peak_rss_mb > a.peak_rss_mb * FLAT_RATIO + FLAT_SLACK_MB:
                failures.append(f"{fmt}: peak grows with length: {a.peak_rss_mb:.0f} MB at 4 s, "
                                f"{b.peak_rss_mb:.0f} MB at {4 * args.long} s")
            if g is not None and g > MAX_GROWTH_MB:
                failures.append(f"{fmt}: RSS grows {g:.2f} MB per 100 frames")
            late = b.unattributed_late_growth_mb
            if late is None:
                failures.append(f"{fmt}: no memory_owners samples in the logs")
            elif late > MAX_UNATTRIBUTED_GROWTH_MB:
                failures.append(f"{fmt}: unattributed private memory grows with the clip: "
                                f"{late:.1f} MB more in the second half of the {4 * args.long} s "
                                "run than in the first")
            base = baseline.get("anon_peak_mb", {}).get(fmt)
            anon = b.peak_anon_mb
            if base and anon and not args.update_baseline and anon > base * BASELINE_SLACK + FLAT_SLACK_MB:
                failures.append(f"{fmt}: peak anonymous RSS {anon:.0f} MB is over the "
                                f"baseline {base:.0f} MB + 10%")
    out = result_path("memcheck")
    out.write_text(json.dumps(rows, indent=2))
    print(f"wrote {out}")
    if args.update_baseline:
        BASELINE.write_text(json.dumps({
            "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.python_implementation()} "
                       f"{platform.python_version()}, {platform.platform()}",
            "measured": time.strftime("%Y-%m-%d"),
            "clip": "720p 24 fps green sample, --effects all, long run = 40 s",
            "anon_peak_mb": {r["format"]: r["long_anon_peak_mb"] for r in rows},
            "job_peak_mb": {r["format"]: r["long_job_peak_mb"] for r in rows},
            "peak_rss_mb": {r["format"]: r["long_peak_mb"] for r in rows},
        }, indent=2) + "\n")
        print(f"baseline written to {BASELINE}")
        return 0
    for f in failures:
        print(f"memcheck: FAIL {f}")
    print("memcheck: " + ("FAILED" if failures else "passed") + f" ({len(rows)} formats)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
