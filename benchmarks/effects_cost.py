"""CPU cost of each effect in ms per 1080p frame, single thread: ``python benchmarks/effects_cost.py``.

Each effect is built with its defaults (``keyer.effects.base.build(name)``), bound once to the frame
size and called as ``op(src, dst, t)`` on two frames:

  keyed   a realistic keyed frame: a textured disc of opaque colour with a soft edge over
          alpha 0 (about 22 % opaque, like a keyed person), despilled green under alpha 0
  opaque  the worst case: the whole frame opaque (no transparent pixels to skip)

The last rows run the six as a chain through ``keyer.stages.EffectsStage``, as a job does: the
subject's box is searched for once and passed on, and each effect copies only where its input and
its buffer's old content can differ. ``chain`` is fed the keyed frame as the planar key leaves it
(colour 0 under alpha 0, its box known); ``chain, RGBA key``, as the RGBA key leaves it (colour
under alpha 0, nothing known), and ``opaque`` the opaque frame.

The machine is shared and noisy, so each number is the MIN of ``--calls`` calls (min is robust
to interference), after two warm-up calls. Numba and OpenCV are held to one thread: the pipeline
already runs decode, key+effects and encode in three threads on two cores, so what counts is CPU
time per frame, not parallel speed-up. Prints the table and writes it to
``benchmarks/results/effects-cost-<time>.json`` (ignored by git).
"""
from __future__ import annotations

import os

os.environ.setdefault("NUMBA_NUM_THREADS", "1")   # before numba is imported

import argparse  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import cv2  # noqa: E402
import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import effects  # noqa: E402
from benchmarks import result_path  # noqa: E402
from keyer.effects.base import Geometry, build  # noqa: E402

NAMES = list(effects.ALL) + ["outline"]


def keyed_frame(w: int = 1920, h: int = 1080, radius: int = 380, seed: int = 0) -> np.ndarray:
    """A textured opaque disc with a 3 px soft edge over alpha 0 (despilled green underneath)."""
    rng = np.random.default_rng(seed)
    img = np.zeros((h, w, 4), np.uint8)
    base = cv2.GaussianBlur(rng.integers(40, 230, (h, w, 3), dtype=np.uint8), (0, 0), 3)
    img[..., :3] = np.clip(base.astype(np.int16) + rng.integers(-12, 12, (h, w, 3)), 0, 255)
    a = np.zeros((h, w), np.uint8)
    cv2.circle(a, (w // 2, h // 2 + 60), radius, 255, -1, lineType=cv2.LINE_AA)
    img[..., 3] = cv2.GaussianBlur(a, (0, 0), 1.5)
    outside = img[..., 3] == 0
    img[outside, 0] = 40
    img[outside, 1] = 90
    img[outside, 2] = 50
    return img


def opaque_frame(w: int = 1920, h: int = 1080) -> np.ndarray:
    img = keyed_frame(w, h)
    img[..., 3] = 255
    return img


def cost_ms(op, src: np.ndarray, dst: np.ndarray, calls: int) -> float:
    for k in range(2):
        op(src, dst, k / 24)
    best = float("inf")
    for k in range(calls):
        t0 = time.perf_counter()
        op(src, dst, (k + 2) / 24)
        best = min(best, time.perf_counter() - t0)
    return 1000.0 * best


def chain_cost_ms(g: Geometry, src: np.ndarray, extent, calls: int) -> float:
    """The six effects through EffectsStage, as a job runs them: min ms per frame."""
    from fractions import Fraction

    from keyer.frame import Frame
    from keyer.stages import EffectsStage

    stage = EffectsStage([build(n).bind(g) for n in effects.ALL], g.width, g.height, ring=3)
    best = float("inf")
    for k in range(calls + 2):
        frame = Frame(k, k, 1, Fraction(1, 24), rgba=src, extent=extent)
        t0 = time.perf_counter()
        stage(frame)
        if k >= 2:
            best = min(best, time.perf_counter() - t0)
    stage.close()
    return 1000.0 * best


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--calls", type=int, default=20, help="calls per effect (the min is kept)")
    ap.add_argument("--only", nargs="*", default=NAMES, help="effects to time")
    args = ap.parse_args(argv)
    cv2.setNumThreads(1)
    frames = {"keyed": keyed_frame(), "opaque": opaque_frame()}
    h, w = frames["keyed"].shape[:2]
    g = Geometry(w, h, 24.0)
    dst = np.zeros_like(frames["keyed"])
    share = float((frames["keyed"][..., 3] > 0).mean())
    print(f"{w}x{h}, min of {args.calls} calls, NUMBA_NUM_THREADS={os.environ['NUMBA_NUM_THREADS']},"
          f" cv2 threads 1; keyed frame {100 * share:.0f} % non-transparent")
    print(f"{'effect':<14} {'keyed ms':>9} {'opaque ms':>10}")
    totals = dict.fromkeys(frames, 0.0)
    rows: dict[str, dict[str, float]] = {}
    for name in args.only:
        op = build(name).bind(g)
        row = {}
        for kind, src in frames.items():
            row[kind] = cost_ms(op, src, dst, args.calls)
            if name in effects.ALL:
                totals[kind] += row[kind]
        op.close()
        rows[name] = row
        print(f"{name:<14} {row['keyed']:9.2f} {row['opaque']:10.2f}")
    print(f"{'all (six)':<14} {totals['keyed']:9.2f} {totals['opaque']:10.2f}   (each alone, summed)")
    keyed = frames["keyed"].copy()
    keyed[keyed[..., 3] == 0] = 0                   # as the planar key leaves it
    ys, xs = np.nonzero(keyed[..., 3])
    box = (int(ys.min()), int(ys.max()) + 1, int(xs.min()), int(xs.max()) + 1)
    rows["all (six, summed)"] = totals
    rows["chain"] = {"keyed": chain_cost_ms(g, keyed, box, args.calls),
                     "opaque": chain_cost_ms(g, frames["opaque"], None, args.calls)}
    rows["chain, RGBA key"] = {"keyed": chain_cost_ms(g, frames["keyed"], None, args.calls)}
    print(f"{'chain':<14} {rows['chain']['keyed']:9.2f} {rows['chain']['opaque']:10.2f}")
    print(f"{'chain, RGBA key':<14} {rows['chain, RGBA key']['keyed']:9.2f}")
    out = result_path("effects-cost")
    out.write_text(json.dumps({"size": f"{w}x{h}", "calls": args.calls, "ms_per_frame": {
        name: {kind: round(ms, 3) for kind, ms in row.items()} for name, row in rows.items()}},
        indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
