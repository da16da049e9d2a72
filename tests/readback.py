"""Decode keyer's outputs back, as a player would, for assertions."""
from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np


def read_frames(path: Path) -> list[tuple[float, float, np.ndarray]]:
    """[(time s, duration s, rgba)] of a video file; WebM alpha via the libvpx-vp9 decoder
    (FFmpeg's native vp9 decoder drops the alpha plane)."""
    out = []
    with av.open(str(path)) as c:
        vs = c.streams.video[0]
        codec = "libvpx-vp9" if vs.codec_context.name == "vp9" else vs.codec_context.name
        dec = av.codec.CodecContext.create(codec, "r")
        if vs.codec_context.extradata:
            dec.extradata = vs.codec_context.extradata
        for packet in c.demux(vs):
            frames = dec.decode(packet) if packet.size else dec.decode(None)
            for f in frames:
                tb = packet.time_base
                dur = float(packet.duration * tb) if packet.duration else 0.0
                out.append((float(f.pts * tb), dur, f.to_ndarray(format="rgba")))
    return out


def stream_facts(path: Path) -> dict:
    with av.open(str(path)) as c:
        vs = c.streams.video[0]
        n = sum(1 for p in c.demux(vs) if p.size)
        return {
            "codec": vs.codec_context.name, "pix_fmt": vs.codec_context.pix_fmt,
            "width": vs.codec_context.width, "height": vs.codec_context.height,
            "alpha_mode": vs.metadata.get("alpha_mode"), "packets": n,
            "duration": c.duration / 1e6 if c.duration else None,
            "audio": [a.codec_context.name for a in c.streams.audio],
            "colorspace": int(vs.codec_context.colorspace), "color_range": int(vs.codec_context.color_range),
        }


def packet_times(path: Path) -> list[tuple[Fraction, Fraction]]:
    """[(pts, duration)] of the video packets, in seconds, in presentation order."""
    with av.open(str(path)) as c:
        vs = c.streams.video[0]
        rows = [(p.pts * p.time_base, (p.duration or 0) * p.time_base) for p in c.demux(vs) if p.size]
    return sorted(rows)
