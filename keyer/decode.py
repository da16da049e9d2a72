"""Decode: a lazy generator of Frames that owns its container and closes it in ``finally``.

It holds one decoded frame back (to learn its duration from the next frame's timestamp, which is
what keeps variable frame rate exact) and never more: with FFmpeg's own frame threading that is
``threads + 2`` pictures alive inside decode at most.

Damage is skipped and counted (``DecodeStats.damaged_packets``), never fatal while anything
decodes: a packet the decoder fails on, whatever the error; a packet cut short by the end of the
file; and, when reading stopped early (a demuxer error, or such a cut-short packet), every packet
the index declares (``StreamInfo.frames``) that was never read. Whatever ends the reading, the
decoder is flushed, so the pictures frame threading still holds come out.
"""
from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
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


def decode(info: StreamInfo, stats: DecodeStats | None = None, threads: int = 0,
           max_duration: float | None = None) -> Iterator[Frame]:
    """Yield the video frames of ``info.path`` in presentation order with their own pts.

    ``max_duration`` (seconds): raise InputProblem when a frame starts more than this after the
    first one, whatever the header declared.
    """
    stats = stats if stats is not None else DecodeStats()
    container = open_input(info.path)
    return _frames(container, info, stats, threads, max_duration)


def _frames(container, info: StreamInfo, stats: DecodeStats, threads: int,
            max_duration: float | None) -> Iterator[Frame]:
    pictures = None
    try:
        vs = container.streams[info.stream_index]
        vs.thread_type = "AUTO"
        vs.codec_context.thread_count = threads
        tb = info.time_base
        default_duration = max(1, round(1 / (info.fps * tb))) if info.fps else 1
        limit = Fraction(max_duration) / tb if max_duration is not None else None
        held: Frame | None = None
        first_pts: int | None = None
        last_pts: int | None = None
        index = 0
        pictures = _pictures(container, vs, info, stats)
        for f in pictures:
            pts = f.pts
            if pts is None:
                pts = (held.pts + default_duration) if held is not None else 0
            if last_pts is not None and pts <= last_pts:
                stats.dropped_frames += 1
                continue
            last_pts = pts
            if first_pts is None:
                first_pts = pts
            if limit is not None and pts - first_pts > limit:
                declared = (f"{info.declared_duration:.1f} s" if info.declared_duration is not None
                            else "no duration")
                raise InputProblem(
                    f"{info.path}: runs past --max-duration {max_duration:g} s (a frame at "
                    f"{float((pts - first_pts) * tb):.2f} s; the header declares {declared})")
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
        if pictures is not None:
            pictures.close()
        container.close()


def _pictures(container, vs, info: StreamInfo, stats: DecodeStats) -> Iterator[av.VideoFrame]:
    """The decoder's pictures in output order; damaged packets skipped and counted.

    One packet is held back: a packet FFmpeg flags corrupt with nothing after it was cut short by
    the end of the file, and is not sent. With frame threading a decoder reports a packet's error
    only when that picture is due, and an error while draining ends the drain (PyAV cannot
    receive without sending): the truncated last packet would take the pictures still inside the
    decoder with it.
    """
    cc = vs.codec_context
    packets = container.demux(vs)
    read = 0
    pending = None
    cut_short = False
    try:
        while True:
            try:
                packet = next(packets)
            except StopIteration:
                break
            except av.FFmpegError:    # the demuxer failed: decode what was read, then flush
                cut_short = True
                break
            if not packet.size:       # PyAV's end-of-stream marker, or an empty packet
                continue
            read += 1
            if pending is not None:
                yield from _decode_packet(cc, pending, stats)
            pending = packet
    finally:
        packets.close()
    if pending is not None:
        if pending.is_corrupt:        # the file ends inside it
            stats.damaged_packets += 1
            cut_short = True
        else:
            yield from _decode_packet(cc, pending, stats)
    if cut_short and info.frames and info.frames > read:
        stats.damaged_packets += info.frames - read   # declared by the index, never read
    try:
        held = cc.decode(None)        # flush: the pictures frame threading still holds
    except (av.FFmpegError, ValueError):
        held = []                     # a late error ends the drain; what it held is lost
        stats.damaged_packets += 1
    yield from held


def _decode_packet(cc, packet, stats: DecodeStats) -> list[av.VideoFrame]:
    """Decode one packet; any error the decoder raises on it counts it damaged, not fatal."""
    try:
        return cc.decode(packet)
    except (av.FFmpegError, ValueError):
        stats.damaged_packets += 1
        return []
