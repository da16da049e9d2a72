"""Encode: the sink that pulls frames, chosen by the output's extension.

Output is written to a temporary file beside the target and renamed into place only when the
job succeeds; on any failure (or Ctrl-C / SIGTERM, which the CLI turns into exceptions) the
temporary file is removed. An existing output is never replaced without ``overwrite``.
"""
from __future__ import annotations

import os
import re
import shutil
import tempfile
import threading
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Callable

import av
import cv2
import numpy as np

from keyer.colour import (BT709_LIMITED, PRIMARIES_BT709, RANGE_LIMITED, SPACE_BT709, TRC_BT709,
                          parse_color, plane_array)
from keyer.errors import OutputProblem, UsageProblem
from keyer.files import publish
from keyer.formats import FORMATS, OutputFormat, encoder_options
from keyer.frame import Frame
from keyer.kernels import encode as EK
from keyer.probe import StreamInfo, open_input
from keyer.settings import EncodeSettings

PLANAR = {"yuva420p": (1, 8), "yuv420p": (1, 8), "yuva444p10le": (0, 10)}   # (4:2:0?, bits)


@dataclass(frozen=True)
class OutputTarget:
    """Where the output goes: a file, or a PNG sequence (a folder or a %d pattern)."""

    path: Path
    format: OutputFormat
    pattern: str | None = None   # for PNG sequences: file name pattern inside ``path``

    @property
    def is_sequence(self) -> bool:
        return self.pattern is not None


_PATTERN = re.compile(r"%0?\d*d")


def resolve_output(output: str | os.PathLike, input_path: str | os.PathLike,
                   overwrite: bool = False) -> OutputTarget:
    """Choose the format from the output path and check it can be written (eagerly)."""
    text = os.fspath(output)
    p = Path(text)
    if _PATTERN.search(p.name):
        if p.suffix.lower() != ".png":
            raise UsageProblem(f"{text}: an image-sequence pattern must end in .png")
        target = OutputTarget(p.parent, FORMATS["png"], p.name)
    elif text.endswith(("/", os.sep)) or (p.suffix.lower() not in FORMATS
                                          and (p.is_dir() or (not p.suffix and not p.exists()))):
        # A folder means a PNG sequence only when the user says so: a trailing "/", or a path
        # without a video extension. "out.webm" that happens to be a folder is refused below.
        target = OutputTarget(p, FORMATS["png"], "%05d.png")
    else:
        fmt = FORMATS.get(p.suffix.lower())
        if fmt is None:
            raise UsageProblem(f"{text}: unknown output type '{p.suffix}'; use .webm, .mov, "
                               ".mp4, .webp, .apng, .gif, a folder, or a %05d.png pattern")
        target = OutputTarget(p, fmt)
    _check_writable(target, Path(input_path), overwrite)
    return target


def _check_writable(target: OutputTarget, input_path: Path, overwrite: bool) -> None:
    try:
        same = target.path.resolve() == input_path.resolve()
    except OSError:
        same = False
    if same:
        raise OutputProblem(f"{target.path}: output is the input file; refusing to overwrite it")
    parent = target.path if target.is_sequence and target.path.is_dir() else target.path.parent
    if target.is_sequence:
        parent = target.path
        while not parent.exists() and parent != parent.parent:
            parent = parent.parent
    elif not parent.exists():
        raise OutputProblem(f"{target.path}: folder {parent} does not exist")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise OutputProblem(f"{target.path}: folder {parent} is not writable")
    if not target.is_sequence and target.path.exists():
        if target.path.is_dir():
            raise OutputProblem(f"{target.path}: is a folder, not a {target.format.name} file "
                                f"(for a PNG sequence in it, end the path with '/')")
        if not overwrite:
            raise OutputProblem(f"{target.path}: already exists (use --overwrite to replace it)")
    if target.is_sequence and target.path.is_dir() and not overwrite:
        first = target.path / _seq_name(target.pattern, 1)
        if first.exists():
            raise OutputProblem(f"{first}: already exists (use --overwrite to replace it)")


def _seq_name(pattern: str, number: int) -> str:
    return _PATTERN.sub(lambda m: m.group(0) % number, pattern, count=1)


def load_background(spec: str, width: int, height: int) -> np.ndarray:
    """An (H, W, 3) uint8 background from ``#RRGGBB`` or an image path (resized once)."""
    try:
        rgb = parse_color(spec)
    except Exception:  # noqa: BLE001 - not a colour: try it as a file
        rgb = None
    if rgb is not None:
        bg = np.empty((height, width, 3), np.uint8)
        bg[...] = rgb[:3]
        return bg
    if not Path(spec).is_file():
        raise UsageProblem(f"--background {spec!r}: neither a colour nor an image file")
    img = cv2.imread(spec, cv2.IMREAD_COLOR)
    if img is None:
        raise UsageProblem(f"--background {spec}: cannot read the image")
    img = cv2.resize(img, (width, height), interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray(img[..., ::-1])


def background_planes(spec: str, width: int, height: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``--background`` as 4:2:0 BT.709 limited-range (Y', Cb, Cr) planes of an even-sized
    picture (see ``yuv420_of``)."""
    return yuv420_of(load_background(spec, width, height))


NO_PLANES = (np.zeros((1, 1), np.uint8),) * 3   # for rgba_to_yuv420 when nothing is flattened


def yuv420_of(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """An opaque even-sized (H, W, 3) picture as 4:2:0 BT.709 limited-range (Y', Cb, Cr)
    planes, made once per job by the kernel that converts RGBA frames for the encoder: the
    very samples it gives where a frame shows only this picture."""
    height, width = rgb.shape[:2]
    rgba = np.empty((height, width, 4), np.uint8)
    rgba[..., :3] = rgb
    rgba[..., 3] = 255
    y = np.empty((height, width), np.uint8)
    u = np.empty((height // 2, width // 2), np.uint8)
    v = np.empty((height // 2, width // 2), np.uint8)
    EK.rgba_to_yuv420(rgba, rgba.view(np.uint32)[..., 0], rgb, False, NO_PLANES, BT709_LIMITED,
                      (y, u, v, np.empty_like(y)))
    return y, u, v


def rgba_to_frame(rgba: np.ndarray, fmt: OutputFormat, background: np.ndarray,
                  background_yuv: tuple[np.ndarray, np.ndarray, np.ndarray] = NO_PLANES,
                  out: av.VideoFrame | None = None) -> av.VideoFrame:
    """RGBA (H, W, 4) -> a frame in ``fmt``'s planar Y'CbCr(A), BT.709 limited (``out``, made
    writable, when given: a frame of that size and format; else a new one), in one
    kernel pass (colour zeroed under alpha 0, or composited over ``background``, (H, W, 3),
    whose ``yuv420_of`` planes are ``background_yuv`` for 8-bit 4:2:0 at an even size):
    no swscale, no extra copy. ``keyer.warmup`` calls it too, so it loads the very kernel
    variant (array layouts included) the job's frames will use. The animated-image formats
    (RGBA, BGRA, a palette) go through ``keyer.animated``."""
    if fmt.pix_fmt not in PLANAR:
        from keyer.animated import AnimatedFrames

        return AnimatedFrames(fmt.pix_fmt)(rgba)
    h, w = rgba.shape[:2]
    sub, bits = PLANAR[fmt.pix_fmt]
    dtype = np.uint8 if bits == 8 else np.dtype("<u2")
    if out is None:
        vf = av.VideoFrame(w, h, fmt.pix_fmt)
    else:
        vf = out
        vf.make_writable()   # a buffer an encoder still references is replaced, not overwritten
    cw = (w + 1) // 2 if sub else w
    y = plane_array(vf.planes[0], dtype, w)
    u = plane_array(vf.planes[1], dtype, cw)
    v = plane_array(vf.planes[2], dtype, cw)
    a = plane_array(vf.planes[3], dtype, w) if fmt.alpha else np.zeros((1, 1), dtype)
    if fast_yuv420(fmt, w, h):
        if fmt.flatten and background_yuv[0].shape != (h, w):   # the kernel reads them unchecked
            background_yuv = yuv420_of(background)
        EK.rgba_to_yuv420(rgba, rgba.view(np.uint32)[..., 0], background, fmt.flatten,
                          background_yuv, BT709_LIMITED, (y, u, v, a))
    else:
        EK.rgba_to_yuv(rgba, background, fmt.flatten, BT709_LIMITED, bits, sub, (y, u, v, a))
    vf.colorspace, vf.color_range = SPACE_BT709, RANGE_LIMITED
    return vf


def fast_yuv420(fmt: OutputFormat, width: int, height: int) -> bool:
    """Whether ``rgba_to_frame`` takes ``rgba_to_yuv420`` (8-bit 4:2:0, even size)."""
    sub, bits = PLANAR[fmt.pix_fmt]
    return bits == 8 and bool(sub) and width % 2 == 0 and height % 2 == 0


class Sink:
    """Base for encoders: ``start()`` once, ``write(frame)`` for each keyed frame, then
    ``finish()`` or ``abort()``."""

    def start(self) -> None:
        """Begin any slow set-up in the background; ``write`` waits for it."""

    def converter(self) -> Callable[[np.ndarray], av.VideoFrame] | None:
        """What turns an RGBA frame into the encoder's frame, for the last stage to call in its
        own thread (``Frame.video``), or None if ``write`` takes RGBA."""
        return None

    def write(self, frame: Frame) -> None: ...

    def finish(self) -> Path: ...

    def abort(self) -> None: ...


class VideoSink(Sink):
    """Encodes RGBA frames into a video file (temporary until ``finish``)."""

    def __init__(self, target: OutputTarget, info: StreamInfo, width: int, height: int,
                 settings: EncodeSettings, overwrite: bool) -> None:
        self.target, self.info, self.settings, self.overwrite = target, info, settings, overwrite
        fmt = target.format
        self.fmt = fmt
        final = target.path
        fd, tmp = tempfile.mkstemp(prefix=f".{final.stem}.", suffix=f".keyer-tmp{final.suffix}",
                                   dir=final.parent)
        os.close(fd)
        self.tmp = Path(tmp)
        try:
            self.container = av.open(str(self.tmp), "w", format=fmt.container,
                                     options=dict(fmt.muxer))
        except av.FFmpegError as exc:
            self._remove_tmp()
            raise OutputProblem(f"{final}: cannot write ({exc})") from None
        # an odd picture for an encoder that takes even sizes only grows by a transparent
        # column/row on the right/bottom (over the background: nothing of the picture is lost)
        self.size = (width, height)
        width, height = fmt.coded_size(width, height)
        self.grown = (np.zeros((height, width, 4), np.uint8) if (width, height) != self.size
                      else None)
        self.stream = self._video_stream(width, height)
        self.background = (load_background(settings.background, width, height) if fmt.flatten
                           else np.zeros((1, 1, 3), np.uint8))
        self.background_yuv = (yuv420_of(self.background)
                               if fmt.flatten and fast_yuv420(fmt, width, height) else NO_PLANES)
        carries_audio = bool(fmt.audio_codec or fmt.audio_copy)   # not WebP, APNG, GIF
        self.audio = (AudioPass(info, self.container, fmt)
                      if (settings.audio and info.has_audio and carries_audio) else None)
        # the encoder's frames, reused in turn: a new 1.4 MB (720p) to 5 MB (1080p) frame for
        # every picture, freed between libx264's packets of every size, left holes the next
        # frame did not fit, and the heap grew in steps (~5 MB over 960 frames of 720p .mp4
        # with all effects); libx264, libvpx and prores_ks copy a picture when it is sent.
        # Made at the first RGBA picture: the planar key writes its own frames.
        self.frames: list[av.VideoFrame] = []
        self.turn = 0
        self.animated = None
        if fmt.pix_fmt not in PLANAR:
            from keyer.animated import AnimatedFrames

            self.animated = AnimatedFrames(fmt.pix_fmt)
        self.first_pts: int | None = None
        self.durations: dict[int, int] = {}
        self.end_time: float | None = None
        self._opening: threading.Thread | None = None
        self._open_error: BaseException | None = None

    def start(self) -> None:
        """Open the encoder in a thread. libvpx's set-up takes 0.1-0.2 s (two encoders with
        alpha, at 720p-1080p) and holds the GIL (PyAV calls ``avcodec_open2`` with it), so it
        overlaps only work that releases the GIL: started once the stages are set up, as the
        first frame is keyed, it runs beside the Numba kernels, and the first frame comes sooner
        than when it opened before the kernels loaded (figures: docs/performance.md)."""
        self._opening = threading.Thread(target=self._open_codec, name="keyer-encoder-open",
                                         daemon=True)
        self._opening.start()

    def _open_codec(self) -> None:
        try:
            self.stream.codec_context.open(strict=False)
        except BaseException as exc:  # noqa: BLE001 - raised again by the first write
            self._open_error = exc

    def _opened(self) -> None:
        """Wait for ``start``'s thread; raise what opening the encoder raised, if anything."""
        if self._opening is not None:
            self._opening.join()
            self._opening = None
        exc = self._open_error
        if isinstance(exc, av.FFmpegError):
            raise OutputProblem(f"{self.target.path}: the {self.fmt.codec} encoder would not "
                                f"open ({exc})") from None
        if exc is not None:
            raise exc

    def _video_stream(self, width: int, height: int):
        fmt, s, info = self.fmt, self.settings, self.info
        options = encoder_options(fmt, s.preset, s.crf)
        rate = info.fps if info.fps else Fraction(30)
        stream = self.container.add_stream(fmt.codec, rate=rate, options=options)
        stream.width, stream.height = width, height
        stream.pix_fmt = fmt.pix_fmt
        stream.time_base = info.time_base
        cc = stream.codec_context
        cc.time_base = info.time_base
        cc.thread_count = s.threads or 0   # the job's ThreadPlan; 0: FFmpeg's own choice
        if fmt.pix_fmt not in PLANAR:   # RGB(A) or a palette: sRGB, nothing to tag
            return stream
        # Tag the colour explicitly: BT.709, limited range.
        cc.colorspace = SPACE_BT709
        cc.color_range = RANGE_LIMITED
        cc.color_primaries = PRIMARIES_BT709
        cc.color_trc = TRC_BT709
        return stream

    def converter(self) -> Callable[[np.ndarray], av.VideoFrame]:
        return self.to_video_frame

    def to_video_frame(self, rgba: np.ndarray) -> av.VideoFrame:
        """``rgba`` as the encoder's next frame: one of two reused in turn (at most one is
        being encoded while the next is made: the stage that calls this hands its frames over,
        ``keyer.threads.prefetch(handoff=True)``), or a new picture for the animated formats."""
        if self.animated is not None:
            return self.animated(rgba)
        if self.grown is not None:
            w, h = self.size
            self.grown[:h, :w] = rgba
            rgba = self.grown
        if not self.frames:
            w, h = self.fmt.coded_size(*self.size)
            self.frames = [av.VideoFrame(w, h, self.fmt.pix_fmt) for _ in range(2)]
        self.turn = (self.turn + 1) % len(self.frames)
        return rgba_to_frame(rgba, self.fmt, self.background, self.background_yuv,
                             self.frames[self.turn])

    def write(self, frame: Frame) -> None:
        if self.first_pts is None:
            self._opened()
            self.first_pts = frame.pts
        vf = frame.video if frame.video is not None else self.to_video_frame(frame.rgba)
        vf.pts = frame.pts - self.first_pts
        vf.duration = frame.duration
        vf.time_base = frame.time_base
        # Encoders do not all carry a frame's duration to its packet; a held (posterized) last
        # frame would then end early. Remember it by pts (unique even with B-frame reordering).
        self.durations[vf.pts] = frame.duration
        self._mux(self.stream.encode(vf))
        self.end_time = float((frame.pts - self.first_pts + frame.duration) * frame.time_base)
        if self.audio is not None:
            self.audio.pump(self.end_time)

    def _mux(self, packets) -> None:
        for packet in packets:
            duration = self.durations.pop(packet.pts, None)
            if duration is not None and packet.time_base == self.info.time_base:
                packet.duration = duration
            self.container.mux(packet)

    def finish(self) -> Path:
        """Flush, close and publish. A failed write raises its OSError (the runner, the one
        place that translates it, calls ``abort``, which removes the temporary file)."""
        self._opened()
        self._mux(self.stream.encode(None))
        if self.audio is not None:
            self.audio.pump(None, end=self.end_time)
            self.audio.close()
        self.container.close()
        return self._commit()

    def _commit(self) -> Path:
        final = self.target.path
        if final.exists() and not self.overwrite:
            self._remove_tmp()
            raise OutputProblem(f"{final}: appeared while keyer was running; not replaced")
        return publish(self.tmp, final)

    def abort(self) -> None:
        try:
            self._opened()
        except Exception:  # noqa: BLE001 - already failing; the encoder's own error is moot
            pass
        try:
            if self.audio is not None:
                self.audio.close()
            self.container.close()
        except Exception:  # noqa: BLE001 - we are already failing; the tmp file goes anyway
            pass
        self._remove_tmp()

    def _remove_tmp(self) -> None:
        try:
            self.tmp.unlink()
        except FileNotFoundError:
            pass


class AudioPass:
    """Copies (or transcodes) the input's first audio stream, interleaved as video advances."""

    def __init__(self, info: StreamInfo, out, fmt: OutputFormat) -> None:
        self.inp = open_input(info.path)
        self.in_stream = self.inp.streams.audio[0]
        name = self.in_stream.codec_context.name
        self.copy = name in fmt.audio_copy
        if self.copy:
            self.out_stream = out.add_stream_from_template(self.in_stream)
            self.resampler = None
        else:
            cc = self.in_stream.codec_context
            rate = 48000 if fmt.audio_codec == "libopus" else (cc.sample_rate or 48000)
            self.out_stream = out.add_stream(fmt.audio_codec, rate=rate)
            self.out_stream.layout = "stereo" if (cc.channels or 2) >= 2 else "mono"
            sample_fmt = self.out_stream.codec_context.codec.audio_formats[0].name
            self.resampler = av.AudioResampler(format=sample_fmt, layout=self.out_stream.layout,
                                               rate=rate)
        self.packets = self.inp.demux(self.in_stream)
        self.pending = None
        self.start = info.start_pts * info.time_base
        self.done = False
        self.out = out

    def pump(self, until: float | None, end: float | None = None) -> None:
        """Mux audio that starts before ``until`` seconds of output time (None: all of it);
        audio starting at or after ``end`` (the video's end) is dropped, so the output is no
        longer than the video by more than one audio frame."""
        while not self.done:
            packet = self.pending
            self.pending = None
            if packet is None:
                try:
                    packet = next(self.packets)
                except StopIteration:
                    self.done = True
                    break
            if packet.dts is None and packet.size:
                continue
            t = (float(packet.pts * packet.time_base - self.start)
                 if packet.pts is not None else None)
            if until is not None and t is not None and t > until:
                self.pending = packet          # not yet: video has not got that far
                break
            if end is not None and t is not None and t >= end and packet.size:
                continue
            if self.copy:
                if packet.size == 0:
                    continue
                offset = int(self.start / packet.time_base)
                packet.pts = (packet.pts or 0) - offset
                packet.dts = (packet.dts or 0) - offset
                packet.stream = self.out_stream
                self.out.mux(packet)
                continue
            try:
                frames = packet.decode()
            except av.FFmpegError:
                frames = []
            if packet.size == 0:
                frames = list(frames) + [None]   # flush the resampler too
            for frame in frames:
                if frame is not None:
                    frame.pts = None
                for rf in self.resampler.resample(frame):
                    for p in self.out_stream.encode(rf):
                        self.out.mux(p)
        if until is None and not self.copy:
            for p in self.out_stream.encode(None):
                self.out.mux(p)

    def close(self) -> None:
        self.inp.close()


class PngSink(Sink):
    """Writes RGBA PNGs into a temporary folder, moved into place file by file at the end."""

    def __init__(self, target: OutputTarget, overwrite: bool) -> None:
        self.target, self.overwrite = target, overwrite
        target.path.mkdir(parents=True, exist_ok=True)
        self.tmpdir = Path(tempfile.mkdtemp(prefix=".keyer-tmp-", dir=target.path))
        self.number = 0
        self.buf = None

    def write(self, frame: Frame) -> None:
        if self.buf is None:
            self.buf = np.empty_like(frame.rgba)
        EK.zero_transparent(frame.rgba, self.buf)
        cv2.cvtColor(self.buf, cv2.COLOR_RGBA2BGRA, dst=self.buf)
        self.number += 1
        first = self.tmpdir / _seq_name(self.target.pattern, self.number)
        if not cv2.imwrite(str(first), self.buf, [cv2.IMWRITE_PNG_COMPRESSION, 3]):
            raise OutputProblem(f"{first}: write failed (disk full?)")
        for _ in range(frame.covers - 1):
            self.number += 1
            shutil.copyfile(first, self.tmpdir / _seq_name(self.target.pattern, self.number))

    def finish(self) -> Path:
        names = sorted(os.listdir(self.tmpdir))
        if not self.overwrite:
            clash = [n for n in names if (self.target.path / n).exists()]
            if clash:
                self.abort()
                raise OutputProblem(f"{self.target.path / clash[0]}: already exists "
                                    "(use --overwrite to replace it)")
        for n in names:
            os.replace(self.tmpdir / n, self.target.path / n)
        self.tmpdir.rmdir()
        return self.target.path

    def abort(self) -> None:
        shutil.rmtree(self.tmpdir, ignore_errors=True)


def open_sink(target: OutputTarget, info: StreamInfo, width: int, height: int,
              settings: EncodeSettings, overwrite: bool) -> Sink:
    if target.is_sequence:
        return PngSink(target, overwrite)
    return VideoSink(target, info, width, height, settings, overwrite)
