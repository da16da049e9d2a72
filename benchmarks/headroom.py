"""Headroom: how much work per frame a pipeline can add to the codec floor and keep a given fps.

``make headroom``, or ``python benchmarks/headroom.py [--size 1920x1080] [--work 0,5,...,30] [--threads 1,2]``

keyer's key and effects add CPU work per frame to what the floor does (decode + encode). This
measures the best any implementation of that work could do on this machine: a pipeline with
keyer's thread structure (decode in a thread, the work in a thread, the encoder in the caller;
bounded queues between) where the work is ``X`` ms of pure arithmetic per frame in a ``nogil``
Numba loop, touching no memory, then the same ``reformat`` to the encoder's pixel format as the
floor's. Real work also competes for caches and memory bandwidth, so this is an upper bound:
keyer's real key or effects costing ``X`` ms per frame (measured alone) run no faster than
``work X`` does here.

Each case runs in its own process, interleaved with the floor (``benchmarks/floor.py``) rep by
rep (every other rep in reverse order), and is timed like the floor: from opening the input to
the last packet (start-up excluded).
Prints the median fps of each case and its ratio to the floor's median, and writes JSON to
``benchmarks/results/headroom-<time>.json`` (ignored by git).
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks import RESULTS, result_path  # noqa: E402
from keyer._jit import kernel  # noqa: E402

BARS = (0.90, 0.75)     # issue 5: key only, and --effects all, as fractions of the floor's fps


@kernel
def spin(n):
    """``n`` dependent multiply-adds: CPU time with no memory traffic."""
    acc = 0.5
    for _ in range(n):
        acc = acc * 0.999999 + 0.000001
    return acc


def calibrate() -> float:
    """Iterations per ms of thread CPU time (the fastest of five tries: the least disturbed)."""
    spin(1000)
    n = 20_000_000
    best = 0.0
    for _ in range(5):
        t = time.thread_time()
        spin(n)
        best = max(best, n / ((time.thread_time() - t) * 1000))
    return best


def simulate(src: str, out: str, fmt: str, work_ms: float, threads: int) -> dict:
    """Decode -> (``work_ms`` of spinning + reformat) -> encode on ``threads``; frames and fps."""
    import av

    from benchmarks.floor import encoder_stream
    from keyer.formats import FORMATS
    from keyer.threads import prefetch

    spec = FORMATS[fmt]
    per_ms = calibrate()
    iters = int(work_ms * per_ms)

    def worked(frames):
        for f in frames:
            if iters:
                spin(iters)
            g = f.reformat(format=spec.pix_fmt)
            g.pts, g.time_base = f.pts, f.time_base
            yield g

    t = time.perf_counter()
    with av.open(src) as inp, av.open(out, "w") as o:
        vs = inp.streams.video[0]
        st = encoder_stream(o, vs, spec, threads)
        decoded = prefetch(inp.decode(vs), 4, "decode")
        frames = prefetch(worked(decoded), 2, "work")
        n = 0
        try:
            for g in frames:
                for p in st.encode(g):
                    o.mux(p)
                n += 1
        finally:
            frames.close()
            decoded.close()
        for p in st.encode(None):
            o.mux(p)
    return {"frames": n, "fps": n / (time.perf_counter() - t), "iters_per_ms": round(per_ms)}


def most_work(points: list[tuple[float, float]], bar: float) -> float | None:
    """The most work per frame (ms) that keeps ``ratio >= bar``, from ``(work, ratio)`` points:
    the largest work measured at or above the bar, moved linearly towards the next point (which
    is below it). None when no point reaches the bar; the largest work measured when all do."""
    points = sorted(points)
    above = [i for i, (_, r) in enumerate(points) if r >= bar]
    if not above:
        return None
    i = above[-1]
    if i == len(points) - 1:
        return points[i][0]
    (w0, r0), (w1, r1) = points[i], points[i + 1]
    return w0 + (w1 - w0) * (r0 - bar) / (r0 - r1)


def run(cmd: list[str]) -> dict:
    done = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", default="1920x1080")
    ap.add_argument("--formats", default=".webm,.mp4")
    ap.add_argument("--work", default="0,5,10,15,20,25,30", help="ms of work per frame, comma-separated")
    ap.add_argument("--threads", default="1,2", help="encoder thread counts, comma-separated")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--clip", help="source clip (default: the bench's 6 s clip at --size)")
    ap.add_argument("--simulate", nargs=5, metavar=("SRC", "OUT", "FMT", "WORK_MS", "THREADS"),
                    help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.simulate:
        src, out, fmt, work, threads = a.simulate
        print(json.dumps(simulate(src, out, fmt, float(work), int(threads))))
        return 0

    from benchmarks.clips import base_clip, looped

    w, h = (int(v) for v in a.size.split("x"))
    src = Path(a.clip) if a.clip else looped(base_clip(w, h, 2.0), 3)
    works = [float(v) for v in a.work.split(",")]
    threads = [int(v) for v in a.threads.split(",")]
    tmp = RESULTS / "clips"
    tmp.mkdir(parents=True, exist_ok=True)
    py = sys.executable
    rows: dict[str, dict[str, list[float]]] = {}
    for rep in range(a.reps):
        for fmt in a.formats.split(","):
            out = str(tmp / f"headroom{fmt}")
            r = rows.setdefault(fmt, {})
            order = [("floor", [py, str(ROOT / "benchmarks/floor.py"), str(src), out, fmt])]
            order += [(f"work {x:g} ms, encoder {n}",
                       [py, __file__, "--simulate", str(src), out, fmt, str(x), str(n)])
                      for n in threads for x in works]
            # every other rep in reverse: a run's place in the sequence moves its speed a little
            for case, cmd in order[::-1] if rep % 2 else order:
                r.setdefault(case, []).append(run(cmd)["fps"])
            Path(out).unlink(missing_ok=True)
        print(f"rep {rep + 1}/{a.reps} done", file=sys.stderr)
    table: dict = {}
    bounds: dict = {}
    print(f"{'fmt':>6} {'case':<24} {'fps':>7} {'x floor':>8}   (medians of {a.reps}; {src.name})")
    for fmt, r in rows.items():
        floor = statistics.median(r["floor"])
        table[fmt] = {}
        for case, fps in r.items():
            m = statistics.median(fps)
            table[fmt][case] = {"fps": round(m, 2), "x_floor": round(m / floor, 3),
                                "runs": [round(v, 2) for v in fps]}
            print(f"{fmt:>6} {case:<24} {m:7.2f} {m / floor:8.2f}")
    print("most work per frame that keeps a bar (ms; ideal work: no memory traffic):")
    for fmt in rows:
        for n in threads:
            points = [(x, table[fmt][f"work {x:g} ms, encoder {n}"]["x_floor"]) for x in works]
            found = {f"{bar:.2f}": most_work(points, bar) for bar in BARS}
            bounds[f"{fmt} encoder {n}"] = found
            text = "   ".join(f"x{bar}: " + ("none" if v is None else f"{v:.1f}")
                              for bar, v in found.items())
            print(f"{fmt:>6} encoder {n}   {text}")
    path = result_path("headroom")
    path.write_text(json.dumps({"clip": src.name, "reps": a.reps, "table": table,
                                "most_work_ms": bounds}, indent=1) + "\n")
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
