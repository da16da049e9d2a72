"""Start-up: seconds from launching ``keyer run`` to its first encoded frame, cold and warm.

For key-only and ``--effects all`` on a short 720p clip: one run with a fresh, empty
``KEYER_CACHE_DIR`` (cold: every Numba kernel compiles), then ``--warm`` runs on the same cache
(warm: kernels load from disk; the median is reported). The time is the bench's clock at spawn to
the timestamp of keyer's ``first_frame`` event. Keyer's own ``since_process_start_s`` (from the
process's start time in /proc, ``keyer.clock``) is kept beside it as ``logged``. Run alone
(``python benchmarks/startup.py``) it prints one line per case and writes
``benchmarks/results/startup-<time>.json`` (ignored by git); ``make bench`` runs it too.

Also the helpers bench.py shares: ``ENV``, ``keyer_cmd`` and reading a keyer log.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks import result_path  # noqa: E402
from benchmarks.clips import base_clip  # noqa: E402

ENV = {**os.environ, "PYTHONPATH": str(ROOT)}
CASES = {"key": [], "all": ["--effects", "all"]}


def keyer_cmd(src: Path, out: Path, *extra: str) -> list[str]:
    """``keyer run`` of ``src`` to ``out``, overwriting, quiet, with ``extra`` options."""
    return [sys.executable, "-m", "keyer", "run", str(src), "-o", str(out), "-y", "-q", *extra]


def read_log(path: Path) -> dict[str, list[dict]]:
    """A keyer JSON-lines log, its events grouped by name in order."""
    events = defaultdict(list)
    for line in path.read_text().splitlines():
        event = json.loads(line)
        events[event["event"]].append(event)
    return events


def epoch(event: dict) -> float:
    """An event's ISO 8601 ``timestamp`` as seconds since the epoch."""
    return datetime.fromisoformat(event["timestamp"]).timestamp()


def first_frame(cmd: list[str], log: Path, env: dict) -> dict:
    """Run ``cmd`` (a keyer run) to the end: seconds to its first frame, ours and keyer's own."""
    spawn = time.time()
    subprocess.run([*cmd, "--log-file", str(log)], env=env, check=True)
    (event,) = read_log(log)["first_frame"]
    return {"s": epoch(event) - spawn, "logged": event["since_process_start_s"]}


def startup(warm: int = 3, fmt: str = ".webm") -> dict:
    """Cold and median-warm time to first frame of each of ``CASES`` on a 2 s 720p clip, then
    median-warm on a 2 s 1080p clip (same cache), in seconds."""
    src = base_clip(1280, 720, 2.0)
    big = base_clip(1920, 1080, 2.0)
    results = {}
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        for name, extra in CASES.items():
            env = {**ENV, "KEYER_CACHE_DIR": str(tmp / f"cache-{name}")}
            env.pop("NUMBA_CACHE_DIR", None)    # it would win over KEYER_CACHE_DIR
            cmd = keyer_cmd(src, tmp / f"out{fmt}", *extra)
            cold, *warms = [first_frame(cmd, tmp / f"{name}-{i}.jsonl", env) for i in range(1 + warm)]
            cmd = keyer_cmd(big, tmp / f"out{fmt}", *extra)
            bigs = [first_frame(cmd, tmp / f"{name}-1080-{i}.jsonl", env) for i in range(warm)]
            results[name] = {"cold_s": round(cold["s"], 3), "cold_logged_s": cold["logged"],
                             "warm_s": round(statistics.median(w["s"] for w in warms), 3),
                             "warm_logged_s": statistics.median(w["logged"] for w in warms),
                             "warm_1080_s": round(statistics.median(w["s"] for w in bigs), 3),
                             "warm_1080_logged_s": statistics.median(w["logged"] for w in bigs)}
    return results


def report(results: dict, warm: int = 3) -> None:
    """Print one line per case (keyer's own ``since_process_start_s`` in brackets)."""
    print("start-up to first frame (launch to first_frame event; keyer's own figure in brackets):")
    for name, r in results.items():
        print(f"  {name:<4} 720p cold {r['cold_s']:6.2f} s [{r['cold_logged_s']:.2f}]   "
              f"warm {r['warm_s']:5.2f} s [{r['warm_logged_s']:.2f}]   1080p warm "
              f"{r['warm_1080_s']:5.2f} s [{r['warm_1080_logged_s']:.2f}] (medians of {warm})")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--warm", type=int, default=3, help="warm runs (median)")
    ap.add_argument("--format", default=".webm", help="output format")
    args = ap.parse_args(argv)
    results = startup(args.warm, args.format)
    report(results, args.warm)
    out = result_path("startup")
    out.write_text(json.dumps({"format": args.format, "warm_runs": args.warm, **results}, indent=2) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
