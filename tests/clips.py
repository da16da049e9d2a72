"""Tiny clips made on the fly for tests (PyAV + numpy only)."""
from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np

SCREEN = (0, 177, 64)
SUBJECT = (200, 150, 120)


def green_frames(n: int, width: int, height: int) -> list[np.ndarray]:
    """``n`` frames: a skin-coloured disc with a soft rim moving over a green screen."""
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    frames = []
    for i in range(n):
        cx = width * (0.35 + 0.3 * i / max(1, n - 1))
        r = min(width, height) * 0.3
        dist = np.sqrt((xx - cx) ** 2 + (yy - height / 2) ** 2)
        a = np.clip((r - dist) / 2.0 + 0.5, 0, 1)[..., None]
        img = a * np.array(SUBJECT, np.float32) + (1 - a) * np.array(SCREEN, np.float32)
        frames.append(np.clip(img + 0.5, 0, 255).astype(np.uint8))
    return frames


def make_clip(path, frames, *, width=64, height=48, fps=24, codec="libx264", pix_fmt="yuv420p",
              rotation: int = 0, audio: bool = False, pts=None, time_base=None, kind="green") -> Path:
    """Write a short clip; ``frames`` is a list of RGB arrays or a count of generated ones."""
    path = Path(path)
    if isinstance(frames, int):
        frames = green_frames(frames, width, height)
    rate = Fraction(fps).limit_denominator(1001)
    with av.open(str(path), "w") as c:
        vs = c.add_stream(codec, rate=rate)
        vs.width, vs.height, vs.pix_fmt = width, height, pix_fmt
        if codec == "libx264":
            vs.options = {"crf": "12", "preset": "ultrafast"}
        vs.time_base = time_base or Fraction(1, 1) / rate
        vs.codec_context.time_base = vs.time_base
        if rotation:
            vs.set_display_rotation(rotation)
        astream = None
        if audio:
            astream = c.add_stream("aac", rate=48000)
            astream.layout = "stereo"
        for i, rgb in enumerate(frames):
            f = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
            f = f.reformat(format=pix_fmt)
            f.pts = pts[i] if pts is not None else i
            for p in vs.encode(f):
                c.mux(p)
        for p in vs.encode(None):
            c.mux(p)
        if astream is not None:
            from samples.make_samples import encode_tones

            encode_tones(c, astream, len(frames) / float(rate))
    return path
