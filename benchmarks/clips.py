"""Benchmark clips: rendered once per size, lengthened by remuxing (no re-encoding)."""
from __future__ import annotations

from pathlib import Path

import av

from benchmarks import RESULTS
from samples.make_samples import write_clip

CACHE = RESULTS / "clips"     # ignored by git with the rest of results/


def base_clip(width: int, height: int, seconds: float = 4.0, kind: str = "green", fps: int = 24) -> Path:
    CACHE.mkdir(parents=True, exist_ok=True)
    path = CACHE / f"{kind}_{width}x{height}_{fps}fps_{seconds:g}s.mp4"
    if not path.exists():
        tmp = path.with_suffix(".tmp.mp4")
        write_clip(tmp, kind, width, height, fps, seconds)
        tmp.rename(path)
    return path


def looped(src: Path, times: int) -> Path:
    """``src`` repeated ``times`` times by stream copy (timestamps shifted; H.264 GOPs intact)."""
    out_path = src.with_name(f"{src.stem}_x{times}.mp4")
    if out_path.exists():
        return out_path
    tmp = out_path.with_suffix(".tmp.mp4")
    with av.open(str(src)) as probe:
        vs = probe.streams.video[0]
        span = sum(p.duration or 0 for p in probe.demux(vs) if p.size)
    with av.open(str(tmp), "w") as out:
        with av.open(str(src)) as first:
            ostream = out.add_stream_from_template(first.streams.video[0])
        for k in range(times):
            with av.open(str(src)) as inp:
                for p in inp.demux(inp.streams.video[0]):
                    if not p.size:
                        continue
                    p.pts += k * span
                    p.dts += k * span
                    p.stream = ostream
                    out.mux(p)
    tmp.rename(out_path)
    return out_path
