"""Decode: a lazy generator of Frames that owns its container and closes it in ``finally``.

It holds one decoded frame back (to learn its duration from the next frame's timestamp, which is
what keeps variable frame rate exact) and never more: with FFmpeg's own frame threading that is
``threads + 2`` pictures alive inside decode at most.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

import av

from keyer.errors import InputProblem
from keyer.frame import Frame
from keyer.probe import StreamInfo, open_input


@dataclass
class DecodeStats:
    """What decode had to skip; read by the pipeline for its report."""

    frames: int = 0
    damaged_packets: int = 0
    dropped_frames: int = 0   # timestamps going backwards or repeated


def decode(info: StreamInfo, stats: DecodeStats | None = None, threads: int = 0) -> Iterator[Frame]:
    """Yield the video frames of ``info.path`` in presentation order with their own pts."""
    stats = stats if stats is not None else DecodeStats()
    container = open_input(info.path)
    return _frames(container, info, stats, threads)


def _frames(container, info: StreamInfo, stats: DecodeStats, threads: int) -> Iterator[Frame]:
    try:
        vs = container.streams[info.stream_index]
        vs.thread_type = "AUTO"
        vs.codec_context.thread_count = threads
        tb = info.time_base
        default_duration = max(1, round(1 / (info.fps * tb))) if info.fps else 1
        held: Frame | None = None
        last_pts: int | None = None
        index = 0
        for packet in container.demux(vs):
            try:
                decoded = packet.decode()
            except (av.error.InvalidDataError, ValueError, EOFError):
                stats.damaged_packets += 1
                continue
            for f in decoded:
                pts = f.pts
                if pts is None:
                    pts = (held.pts + default_duration) if held is not None else 0
                if last_pts is not None and pts <= last_pts:
                    stats.dropped_frames += 1
                    continue
                last_pts = pts
                if held is not None:
                    held.duration = pts - held.pts
                    yield held
                own = f.duration if f.duration and f.duration > 0 else default_duration
                held = Frame(index=index, pts=pts, duration=own, time_base=tb, source=f)
                index += 1
                stats.frames = index
        if held is not None:
            yield held
        if index == 0:
            raise InputProblem(f"{info.path}: no decodable video frame")
    except av.FFmpegError as exc:
        raise InputProblem(f"{info.path}: decoding failed after {stats.frames} frames ({exc})") from None
    finally:
        container.close()
