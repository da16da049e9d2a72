"""Read a clip's header and first frame, and describe its video stream.

``probe()`` is eager: every check that can fail on an input happens here, before the pipeline
decodes anything. Only local regular files are opened, with FFmpeg's protocol whitelist set to
``file`` and the container format checked against an allowlist, so a playlist or concat script
cannot make the demuxer open other files or URLs.
"""
from __future__ import annotations

import os
import re
import stat
import struct
from dataclasses import asdict, dataclass
from fractions import Fraction
from pathlib import Path

import av

from keyer.errors import InputProblem

# Container formats keyer accepts (FFmpeg demuxer names). These are the formats phones, cameras
# and editors write for video. Playlist and script formats (hls, concat, ...) are absent on
# purpose: they open other files or URLs. Still-image demuxers are absent too: a picture is not a
# clip.
ALLOWED_FORMATS = frozenset({
    "mov", "mp4", "m4a", "3gp", "3g2", "mj2",   # QuickTime / MP4 family
    "matroska", "webm",                          # Matroska / WebM
    "avi", "mpegts", "mpeg", "flv", "ogg", "asf", "mxf", "nut", "h264", "hevc", "m4v",
    "ivf", "yuv4mpegpipe",
})
OPEN_OPTIONS = {"protocol_whitelist": "file", "format_whitelist": ",".join(sorted(ALLOWED_FORMATS))}


@dataclass(frozen=True)
class StreamInfo:
    """What keyer knows of an input before decoding it."""

    path: str
    container: str
    stream_index: int
    width: int              # coded size
    height: int
    rotation: int           # degrees the picture is turned counter-clockwise for display
    fps: Fraction           # average frame rate (0 when unknown)
    time_base: Fraction
    start_pts: int
    duration: float | None  # seconds
    frames: int | None      # when the container says so
    codec: str
    pix_fmt: str
    bit_depth: int
    alpha: bool             # the stream carries alpha (e.g. WebM VP9 with alpha_mode=1)
    colorspace: str
    color_range: str
    audio_codec: str | None
    audio_rate: int | None
    audio_channels: int | None
    # seconds: the longest duration any header claims (``declared_duration``), which limits use;
    # ``duration`` is what FFmpeg reports for the stream's samples
    declared_duration: float | None = None
    # the decoder pads its pictures' rows (line size > width): Numba types such planes as strided
    # arrays, another variant of each kernel, which the warm-up loads (``keyer.warmup``)
    padded_rows: bool = False
    # private memory (MB) the decoder took to open and decode the first frame, here in the probe:
    # the decoder's part of the job's memory ledger (``keyer.ledger``)
    decoder_mb: float | None = None

    @property
    def display_size(self) -> tuple[int, int]:
        """(width, height) after applying rotation: the upright picture."""
        if self.rotation % 180:
            return self.height, self.width
        return self.width, self.height

    @property
    def has_audio(self) -> bool:
        return self.audio_codec is not None

    def as_dict(self) -> dict:
        d = asdict(self)
        d["fps"] = float(self.fps)
        d["time_base"] = str(self.time_base)
        d["display_width"], d["display_height"] = self.display_size
        d["has_audio"] = self.has_audio
        return d


def open_input(path: str | os.PathLike) -> av.container.InputContainer:
    """Open a local file for demuxing, refusing anything that is not a plain readable file."""
    p = Path(path)
    try:
        st = p.stat()
    except FileNotFoundError:
        raise InputProblem(f"{p}: no such file") from None
    except OSError as exc:
        raise InputProblem(f"{p}: cannot read ({exc.strerror})") from None
    if stat.S_ISDIR(st.st_mode):
        raise InputProblem(f"{p}: is a directory, not a video file")
    if not stat.S_ISREG(st.st_mode):
        raise InputProblem(f"{p}: not a regular file")
    if st.st_size == 0:
        raise InputProblem(f"{p}: empty file")
    if not os.access(p, os.R_OK):
        raise InputProblem(f"{p}: permission denied")
    try:
        return av.open(str(p.resolve()), "r", options=dict(OPEN_OPTIONS), timeout=10.0)
    except av.error.PermissionError:
        raise InputProblem(f"{p}: permission denied") from None
    except (av.error.InvalidDataError, ValueError) as exc:
        raise InputProblem(f"{p}: not a video file keyer can read ({_reason(exc)})") from None
    except av.FFmpegError as exc:
        raise InputProblem(f"{p}: cannot open ({_reason(exc)})") from None


def _reason(exc: Exception) -> str:
    return str(getattr(exc, "strerror", None) or exc).split(";")[0]


def padded_rows(frame: av.VideoFrame) -> bool:
    """Whether any plane of ``frame`` has rows longer than its pixels (FFmpeg's alignment)."""
    sample = 2 if _depth(frame.format) > 8 else 1
    return any(p.line_size != p.width * sample for p in frame.planes)


def _depth(fmt: av.VideoFormat | None) -> int:
    if fmt is None or not fmt.components:
        return 8
    return max(c.bits for c in fmt.components)


def probe(path: str | os.PathLike) -> StreamInfo:
    """Describe the first video stream of ``path``; raise InputProblem if there is none."""
    from keyer.memory import status_mb

    anon = status_mb().get("anon")
    container = open_input(path)
    try:
        fmt_names = set(container.format.name.split(","))
        if not fmt_names & ALLOWED_FORMATS:
            raise InputProblem(f"{path}: container format '{container.format.name}' is not accepted")
        videos = [s for s in container.streams.video
                  if not (s.disposition & av.stream.Disposition.attached_pic)]
        if not videos:
            kind = "audio-only file" if container.streams.audio else "file with no video stream"
            raise InputProblem(f"{path}: {kind}; keyer needs a video stream")
        vs = videos[0]
        cc = vs.codec_context   # None when FFmpeg knows no codec for the stream (damaged header)
        if cc is None:
            raise InputProblem(f"{path}: no decoder for its video stream (damaged header?)")
        if cc.codec is None or not cc.codec.is_decoder:
            raise InputProblem(f"{path}: no decoder for video codec '{cc.name}'")
        if not cc.width or not cc.height:
            raise InputProblem(f"{path}: video size unknown (damaged header?)")
        if vs.time_base is None:
            raise InputProblem(f"{path}: video stream has no time base")
        fps = vs.average_rate or vs.guessed_rate or vs.base_rate or Fraction(0)
        duration = None
        if vs.duration is not None and vs.duration > 0:
            duration = float(vs.duration * vs.time_base)
        elif container.duration is not None and container.duration > 0:
            duration = container.duration / av.time_base
        frames = vs.frames or None
        declared = declared_duration(path, container, vs, fps)
        audio = container.streams.audio[0] if container.streams.audio else None
        first = _first_frame(container, vs, path)
        rotation = int(round(first.rotation or 0)) % 360
        if rotation % 90:
            raise InputProblem(f"{path}: display rotation {rotation} degrees is not a multiple of 90")
        return StreamInfo(
            path=str(path), container=container.format.name, stream_index=vs.index,
            width=cc.width, height=cc.height,
            rotation=rotation, fps=Fraction(fps), time_base=Fraction(vs.time_base),
            start_pts=vs.start_time or 0, duration=duration, frames=frames,
            codec=cc.name, pix_fmt=first.format.name, bit_depth=_depth(first.format),
            alpha=(vs.metadata.get("alpha_mode") == "1"
                   or first.format.name.startswith(("yuva", "rgba", "bgra", "argb", "gbrap"))),
            colorspace=_colorspace(first.colorspace), color_range=_range(first.color_range),
            audio_codec=audio.codec_context.name if audio else None,
            audio_rate=audio.codec_context.sample_rate if audio else None,
            audio_channels=audio.codec_context.channels if audio else None,
            declared_duration=declared, padded_rows=padded_rows(first),
            decoder_mb=round(status_mb()["anon"] - anon, 1) if anon is not None else None,
        )
    finally:
        container.close()


COLORSPACES = {0: "rgb", 1: "bt709", 2: "unspecified", 4: "fcc", 5: "bt470bg", 6: "smpte170m",
               7: "smpte240m", 9: "bt2020nc", 10: "bt2020c"}
RANGES = {0: "unspecified", 1: "tv", 2: "pc"}


def _colorspace(value) -> str:
    return COLORSPACES.get(int(value), str(int(value)))


def _range(value) -> str:
    return RANGES.get(int(value), str(int(value)))


def _first_frame(container, vs, path, max_packets: int = 500) -> av.VideoFrame:
    """Decode the first frame: proves the codec works and reveals rotation and pixel format.

    Reads at most ``max_packets`` packets so a stream that never yields a picture cannot hang.
    """
    seen = 0
    try:
        for packet in container.demux(vs):
            seen += 1
            try:
                frames = packet.decode()
            except (av.error.InvalidDataError, ValueError):
                frames = []
            if frames:
                return frames[0]
            if seen >= max_packets:
                break
    except av.FFmpegError as exc:
        raise InputProblem(f"{path}: unreadable video stream ({_reason(exc)})") from None
    raise InputProblem(f"{path}: no decodable video frame")


def declared_duration(path, container, vs, fps: Fraction) -> float | None:
    """The longest duration, in seconds, that anything in the file's headers declares.

    The largest of: the video stream's and the container's durations, frames / fps where the
    frame count is declared, Matroska's per-track ``DURATION`` tag, and for QuickTime/MP4 the
    movie, track and media headers (FFmpeg reports the sample table's length instead, however
    long those say the file is). None when nothing declares a duration.
    """
    found = []
    if vs.duration is not None and vs.duration > 0:
        found.append(float(vs.duration * vs.time_base))
    if container.duration is not None and container.duration > 0:
        found.append(container.duration / av.time_base)
    if vs.frames and fps:
        found.append(vs.frames / float(fps))
    tag = _clock_seconds(vs.metadata.get("DURATION", ""))
    if tag:
        found.append(tag)
    if "mov" in container.format.name.split(","):
        found += quicktime_durations(path)
    return max(found) if found else None


_CLOCK = re.compile(r"(\d{1,9}):(\d\d):(\d\d(?:\.\d{1,9})?)")


def _clock_seconds(text: str) -> float | None:
    """``"HH:MM:SS.nnnnnnnnn"`` (Matroska's DURATION tag) in seconds; None if it is not that."""
    m = _CLOCK.fullmatch(text.strip())
    return int(m[1]) * 3600 + int(m[2]) * 60 + float(m[3]) if m else None


_QT_PARENTS = {b"moov", b"trak", b"mdia"}     # the boxes that hold mvhd, tkhd and mdhd


def quicktime_durations(path, max_boxes: int = 10_000) -> list[float]:
    """Seconds declared by the mvhd, tkhd and mdhd boxes of a QuickTime/MP4 file.

    Walks the box tree by the sizes in the box headers (mdat is skipped, not read), visiting at
    most ``max_boxes`` boxes; a duration of 0 or all ones ("unknown", ISO/IEC 14496-12) is left
    out. tkhd durations are in the movie's timescale (mvhd's), the others in their own.
    """
    headers: list[tuple[bytes, int, int]] = []   # (box, duration, timescale; 0 = the movie's)
    try:
        with open(path, "rb") as f:
            _walk_boxes(f, 0, os.fstat(f.fileno()).st_size, 0, headers, [max_boxes])
    except OSError:
        return []
    movie_scale = next((scale for box, _, scale in headers if box == b"mvhd"), 0)
    return [duration / (scale or movie_scale) for _, duration, scale in headers
            if scale or movie_scale]


def _walk_boxes(f, pos: int, stop: int, depth: int, out: list, budget: list[int]) -> None:
    while pos + 8 <= stop and budget[0] > 0:
        budget[0] -= 1
        f.seek(pos)
        head = f.read(16)
        if len(head) < 8:
            return
        size, kind = struct.unpack(">I4s", head[:8])
        start = pos + 8
        if size == 1 and len(head) == 16:        # a 64-bit size follows the type
            size, start = struct.unpack(">Q", head[8:])[0], pos + 16
        elif size == 0:                          # to the end of the enclosing box (or file)
            size = stop - pos
        if size < start - pos:
            return                               # damaged: stop reading this level
        end = min(pos + size, stop)
        if kind in _QT_PARENTS and depth < 4:
            _walk_boxes(f, start, end, depth + 1, out, budget)
        elif kind in (b"mvhd", b"tkhd", b"mdhd"):
            f.seek(start)
            found = _header_duration(kind, f.read(36))
            if found:
                out.append((kind, *found))
        pos = end


def _header_duration(kind: bytes, body: bytes) -> tuple[int, int] | None:
    """(duration, timescale) of an mvhd/mdhd body, (duration, 0) of a tkhd; None if unknown."""
    wide = body[:1] == b"\x01"                  # version 1: 64-bit times and duration
    if kind == b"tkhd":                          # created, modified, track id, reserved, duration
        scale, at = 0, (28 if wide else 20)
    else:                                        # created, modified, timescale, duration
        at = 24 if wide else 16
        scale = int.from_bytes(body[at - 4:at], "big")
        if not scale:
            return None
    n = 8 if wide else 4
    if len(body) < at + n:
        return None
    duration = int.from_bytes(body[at:at + n], "big")
    if duration in (0, (1 << 8 * n) - 1):
        return None
    return duration, scale


def expected_frames(info: StreamInfo) -> int | None:
    """Frame count from the header, else estimated from duration x fps (None when unknown)."""
    if info.frames:
        return info.frames
    if info.duration and info.fps:
        return max(1, int(round(info.duration * float(info.fps))))
    return None
