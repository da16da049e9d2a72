"""Per-effect cost in ms per 1080p frame: ``python -m effects._timing`` (median of 10 calls)."""
from __future__ import annotations

import time

import cv2
import numpy as np

import effects
from effects import Geometry, build


def frame(w: int = 1920, h: int = 1080) -> np.ndarray:
    """A 1080p RGBA frame with a big soft-edged textured subject."""
    rng = np.random.default_rng(0)
    img = np.zeros((h, w, 4), np.uint8)
    img[..., :3] = rng.integers(60, 220, (h, w, 3), dtype=np.uint8)
    a = np.zeros((h, w), np.uint8)
    cv2.ellipse(a, (w // 2, h // 2), (w // 4, h // 3), 0, 0, 360, 255, -1)
    img[..., 3] = cv2.GaussianBlur(a, (0, 0), 2)
    return img


def main() -> None:
    src = frame()
    out = np.empty_like(src)
    g = Geometry(width=src.shape[1], height=src.shape[0], fps=24)
    total = 0.0
    for name in list(effects.ALL) + ["outline"]:
        op = build(name).bind(g)
        for k in range(2):
            op(src, out, k / 24)
        ts = []
        for k in range(10):
            t = time.perf_counter()
            op(src, out, k / 24)
            ts.append(time.perf_counter() - t)
        ms = 1000 * float(np.median(ts))
        total += ms if name != "outline" else 0
        print(f"{name:<14} {ms:7.2f} ms")
    print(f"{'all (six)':<14} {total:7.2f} ms")


if __name__ == "__main__":
    main()
