"""``keyer check``: re-open a sticker file and verify every rule of a platform's profile.

The containers are read the way the platforms read them, independently of how keyer wrote
them: WebP's RIFF chunks (VP8X, ANIM, ANMF) and APNG's PNG chunks (IHDR, acTL, fcTL) are parsed
here, byte by byte; WebM through FFmpeg's demuxer, its VP9 alpha through libvpx's decoder
(FFmpeg's native vp9 decoder drops the alpha plane). Pixels are decoded too: VP9 by libvpx,
APNG by FFmpeg, and each WebP animation frame by FFmpeg's still-WebP decoder (FFmpeg has no
animated WebP decoder) and composed onto the canvas by the ANMF blend and dispose flags.

``check`` returns one line per broken rule; an empty list means the file passes.
"""
from __future__ import annotations

import io
import os
import struct
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import av
import numpy as np

from keyer.errors import InputProblem
from keyer.platforms import Profile

TOLERANCE_S = 0.0005   # timestamps are whole milliseconds in WebM and WebP


@dataclass
class Facts:
    """What a sticker file is, as read back."""

    container: str                       # "webm", "webp", "apng", or what it really is
    codec: str = ""
    pix_fmt: str = ""
    alpha_declared: bool = False         # the container/codec says the frames carry alpha
    width: int = 0
    height: int = 0
    durations: list[float] = field(default_factory=list)   # seconds, per frame, in order
    loop: int | None = None              # plays (0 = forever); None: the format has no flag
    audio: int = 0
    bytes: int = 0
    min_alpha: int = 255                 # over every pixel of every decoded frame
    max_alpha: int = 0
    first_opaque: int = 0                # pixels of the first frame with alpha > 0
    problems: list[str] = field(default_factory=list)   # what could not be read

    @property
    def length(self) -> float:
        return sum(self.durations)

    @property
    def frames(self) -> int:
        return len(self.durations)


def check(path: str | os.PathLike, profile: Profile) -> list[str]:
    """Every rule of ``profile`` that the file at ``path`` breaks, one line each."""
    facts = read_facts(path)
    return judge(facts, profile)


def judge(f: Facts, p: Profile) -> list[str]:
    """The broken rules of ``p`` given the facts ``f`` of a file."""
    out = list(f.problems)
    if f.container != p.container:
        return out + [f"container: {f.container}, must be {p.container}"]
    want_codec = {"webm": "vp9", "webp": "webp", "apng": "apng"}[p.container]
    if f.codec != want_codec:
        out.append(f"codec: {f.codec}, must be {want_codec}")
    if p.container == "webm" and f.pix_fmt != "yuva420p":
        out.append(f"pixel format: {f.pix_fmt or 'unknown'} decoded, must be yuva420p "
                   "(VP9 with an alpha channel, alpha_mode=1)")
    if p.container == "apng" and f.pix_fmt != "rgba":
        out.append(f"pixel format: {f.pix_fmt}, must be 8-bit RGBA (not a palette)")
    if not f.alpha_declared:
        out.append("alpha: the file declares no alpha channel")
    elif f.frames and (f.min_alpha > 16 or f.max_alpha < 128):   # (lossy alpha: not 0/255)
        out.append(f"alpha: no real transparency (alpha {f.min_alpha}..{f.max_alpha} over "
                   "every pixel)")
    canvas = p.canvas_problem(f.width, f.height)
    if canvas:
        out.append(canvas)
    length = f.length
    if not f.frames:
        out.append("frames: none")
    if p.max_seconds is not None and length > p.max_seconds + TOLERANCE_S:
        out.append(f"length: {length:.3f} s, over {p.max_seconds:g} s")
    if p.min_seconds and length < p.min_seconds - TOLERANCE_S:
        out.append(f"length: {length:.3f} s, under {p.min_seconds:g} s")
    if p.whole_seconds and abs(length - round(length)) > TOLERANCE_S:
        out.append(f"length: {length:.3f} s, must be a whole number of seconds")
    if p.max_fps and length > 0 and f.frames / length > p.max_fps + 1e-6:
        out.append(f"frame rate: {f.frames / length:.3f} fps, over {p.max_fps:g}")
    if f.durations:
        shortest = min(f.durations)
        if p.min_frame_ms and shortest * 1000 < p.min_frame_ms - 1e-6:
            out.append(f"frame duration: a frame lasts {shortest * 1000:.1f} ms, under "
                       f"{p.min_frame_ms:g} ms")
        if p.container != "webm" and shortest * 1000 <= 10 + 1e-6:
            out.append(f"frame duration: a frame lasts {shortest * 1000:.1f} ms; players show "
                       "frames of 10 ms or less for 100 ms")
    if p.frames and not p.frames[0] <= f.frames <= p.frames[1]:
        out.append(f"frames: {f.frames}, must be {p.frames[0]}..{p.frames[1]}")
    if f.bytes > p.limit_bytes:
        out.append(f"bytes: {f.bytes}, over the limit of {p.limit_bytes} ({p.kb} KB)")
    if f.audio:
        out.append(f"audio: {f.audio} audio stream(s), must have none")
    if p.loop == "forever" and f.loop != 0:
        out.append(f"loop: plays {f.loop} time(s), must loop forever (0)")
    if p.loop == "plays":
        if not f.loop or f.loop * length > p.max_plays_seconds + TOLERANCE_S:
            out.append(f"loop: plays {f.loop} time(s) x {length:.3f} s, must be at least once "
                       f"and at most {p.max_plays_seconds:g} s in all")
    if p.name == "whatsapp" and f.frames and f.first_opaque == 0:
        out.append("first frame: empty (WhatsApp shows the first frame as the sticker's still)")
    return out


def read_facts(path: str | os.PathLike) -> Facts:
    """Read a sticker file back; an unreadable one raises InputProblem."""
    path = Path(path)
    try:
        head = path.open("rb").read(12)
    except OSError as exc:
        raise InputProblem(f"{path}: cannot read ({exc.strerror or exc})") from None
    size = path.stat().st_size
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        facts = _webp(path)
    elif head[:8] == b"\x89PNG\r\n\x1a\n":
        facts = _apng(path)
    elif head[:4] == b"\x1a\x45\xdf\xa3":
        facts = _webm(path)
    else:
        raise InputProblem(f"{path}: not a WebM, WebP or PNG file")
    facts.bytes = size
    return facts


# ---------------------------------------------------------------- WebM (VP9)
def _webm(path: Path) -> Facts:
    f = Facts("webm")
    try:
        c = av.open(str(path))
    except av.FFmpegError as exc:
        raise InputProblem(f"{path}: cannot open ({exc})") from None
    with c:
        if "webm" not in c.format.name and "matroska" not in c.format.name:
            f.container = c.format.name
        f.audio = len(c.streams.audio)
        if not c.streams.video:
            f.problems.append("video: no video stream")
            return f
        vs = c.streams.video[0]
        f.codec = vs.codec_context.name
        f.width, f.height = vs.codec_context.width, vs.codec_context.height
        f.alpha_declared = vs.metadata.get("alpha_mode", vs.metadata.get("ALPHA_MODE")) == "1"
        dec = av.codec.CodecContext.create("libvpx-vp9" if f.codec == "vp9" else f.codec, "r")
        rows = []
        first = True
        for packet in c.demux(vs):
            if packet.size:
                rows.append((packet.pts, packet.duration or 0, packet.time_base))
            for frame in dec.decode(packet if packet.size else None):
                f.pix_fmt = frame.format.name
                alpha = _alpha_plane(frame)
                first = _note_alpha(f, alpha, first)
        rows.sort()
        for i, (pts, dur, tb) in enumerate(rows):
            end = rows[i + 1][0] if i + 1 < len(rows) else pts + dur
            f.durations.append(float((end - pts) * tb))
        if rows and c.duration:
            # Matroska keeps no per-block duration (the demuxer guesses one from the rate):
            # the last frame ends where the segment's Duration says, as players take it
            end = ((c.start_time or 0) + c.duration) / 1e6
            f.durations[-1] = max(0.0, end - float(rows[-1][0] * rows[-1][2]))
    return f


def _alpha_plane(frame) -> np.ndarray | None:
    if frame.format.name == "yuva420p":
        plane = frame.planes[3]
        a = np.frombuffer(plane, np.uint8).reshape(plane.height, plane.line_size)
        return a[:, :plane.width]
    if frame.format.name in ("rgba", "bgra"):
        return frame.to_ndarray()[..., 3]
    return None


def _note_alpha(f: Facts, alpha: np.ndarray | None, first: bool) -> bool:
    if alpha is None:
        if first:
            f.first_opaque = f.width * f.height
        f.min_alpha = min(f.min_alpha, 255)
        f.max_alpha = 255
        return False
    f.min_alpha = min(f.min_alpha, int(alpha.min()))
    f.max_alpha = max(f.max_alpha, int(alpha.max()))
    if first:
        f.first_opaque = int(np.count_nonzero(alpha))
    return False


# ---------------------------------------------------------------- WebP (RIFF)
@dataclass
class AnimFrame:
    x: int
    y: int
    width: int
    height: int
    duration_ms: int
    blend: bool          # alpha-blend onto the canvas (else replace the rectangle)
    dispose: bool        # clear the rectangle to transparent after showing it
    alpha: bool          # an ALPH chunk, or a VP8L bitstream with its alpha bit set
    chunks: list = field(default_factory=list)   # (fourcc, payload) of ALPH / VP8 / VP8L


@dataclass
class WebP:
    width: int = 0
    height: int = 0
    animated: bool = False
    alpha_flag: bool = False
    loop: int | None = None
    frames: list[AnimFrame] = field(default_factory=list)


def _chunks(data: bytes, start: int, end: int) -> Iterator[tuple[bytes, bytes]]:
    i = start
    while i + 8 <= end:
        fourcc, size = data[i:i + 4], struct.unpack("<I", data[i + 4:i + 8])[0]
        yield fourcc, data[i + 8:i + 8 + size]
        i += 8 + size + (size & 1)


def _u24(b: bytes) -> int:
    return b[0] | b[1] << 8 | b[2] << 16


def parse_webp(data: bytes) -> WebP:
    """The structure of a WebP file: canvas, flags, loop count and each animation frame."""
    w = WebP()
    if data[:4] != b"RIFF" or data[8:12] != b"WEBP":
        raise ValueError("not a WebP file")
    end = min(len(data), 8 + struct.unpack("<I", data[4:8])[0])
    for fourcc, body in _chunks(data, 12, end):
        if fourcc == b"VP8X":
            w.alpha_flag, w.animated = bool(body[0] & 0x10), bool(body[0] & 0x02)
            w.width, w.height = _u24(body[4:7]) + 1, _u24(body[7:10]) + 1
        elif fourcc == b"ANIM":
            w.loop = struct.unpack("<H", body[4:6])[0]
        elif fourcc == b"ANMF":
            fr = AnimFrame(2 * _u24(body[0:3]), 2 * _u24(body[3:6]), _u24(body[6:9]) + 1,
                           _u24(body[9:12]) + 1, _u24(body[12:15]), not body[15] & 0x02,
                           bool(body[15] & 0x01), False)
            for sub, payload in _chunks(body, 16, len(body)):
                if sub in (b"ALPH", b"VP8 ", b"VP8L"):
                    fr.chunks.append((sub, payload))
                if sub == b"ALPH":
                    fr.alpha = True
                if sub == b"VP8L" and len(payload) >= 5:
                    fr.alpha = fr.alpha or bool(payload[4] & 0x10)
            w.frames.append(fr)
        elif fourcc in (b"VP8 ", b"VP8L") and not w.frames:   # a still image
            w.frames.append(AnimFrame(0, 0, w.width, w.height, 0, False, False,
                                      fourcc == b"VP8L" and bool(body[4] & 0x10),
                                      [(fourcc, body)]))
    return w


def _still(fr: AnimFrame) -> bytes:
    """One animation frame as a still WebP file (for FFmpeg's still-image decoder)."""
    body = b"".join(c + struct.pack("<I", len(p)) + p + (b"\0" if len(p) & 1 else b"")
                    for c, p in fr.chunks)
    vp8x = bytes([0x10 if fr.alpha else 0, 0, 0, 0]) + struct.pack("<I", fr.width - 1)[:3] \
        + struct.pack("<I", fr.height - 1)[:3]
    body = b"VP8X" + struct.pack("<I", 10) + vp8x + body
    return b"RIFF" + struct.pack("<I", 4 + len(body)) + b"WEBP" + body


def webp_frames(w: WebP) -> Iterator[np.ndarray]:
    """The canvas after each animation frame, as (H, W, 4) uint8 straight RGBA, composed by the
    ANMF rectangles, blend and dispose flags (the WebP container specification)."""
    canvas = np.zeros((w.height, w.width, 4), np.float32)
    for fr in w.frames:
        dec = av.codec.CodecContext.create("webp", "r")
        frames = dec.decode(av.Packet(_still(fr)))
        if not frames:
            raise ValueError("a frame does not decode")
        img = frames[0].to_ndarray(format="rgba").astype(np.float32)
        region = canvas[fr.y:fr.y + fr.height, fr.x:fr.x + fr.width]
        if fr.blend:
            a = img[..., 3:4] / 255
            ca = region[..., 3:4] / 255
            oa = a + ca * (1 - a)
            rgb = (img[..., :3] * a + region[..., :3] * ca * (1 - a)) / np.maximum(oa, 1e-6)
            region[..., :3], region[..., 3:4] = rgb, oa * 255
        else:
            region[...] = img
        yield np.clip(canvas + 0.5, 0, 255).astype(np.uint8)
        if fr.dispose:
            region[...] = 0


def _webp(path: Path) -> Facts:
    f = Facts("webp", codec="webp")
    data = path.read_bytes()
    try:
        w = parse_webp(data)
    except (ValueError, IndexError, struct.error) as exc:
        raise InputProblem(f"{path}: not a readable WebP file ({exc})") from None
    f.width, f.height, f.loop = w.width, w.height, (w.loop if w.animated else 1)
    f.alpha_declared = w.alpha_flag and bool(w.frames) and all(fr.alpha for fr in w.frames)
    f.pix_fmt = "yuva420p" if f.alpha_declared else "yuv420p"
    f.durations = [fr.duration_ms / 1000 for fr in w.frames]
    if not w.animated:
        f.problems.append("animation: a still WebP (no ANIM/ANMF chunks)")
    first = True
    try:
        for rgba in webp_frames(w):
            first = _note_alpha(f, rgba[..., 3], first)
    except (ValueError, av.FFmpegError) as exc:
        f.problems.append(f"frames: a WebP frame does not decode ({exc})")
    return f


# ---------------------------------------------------------------- APNG (PNG chunks)
def parse_png(data: bytes) -> dict:
    """IHDR, acTL and the fcTL of each frame of a PNG / APNG file."""
    out = {"fctl": [], "idat": 0, "crc_ok": True}
    i = 8
    while i + 8 <= len(data):
        size = struct.unpack(">I", data[i:i + 4])[0]
        kind, body = data[i + 4:i + 8], data[i + 8:i + 8 + size]
        crc = data[i + 8 + size:i + 12 + size]
        if len(crc) == 4 and struct.unpack(">I", crc)[0] != zlib.crc32(kind + body):
            out["crc_ok"] = False
        if kind == b"IHDR":
            out["width"], out["height"], out["depth"], out["colour"] = struct.unpack(
                ">IIBB", body[:10])
        elif kind == b"acTL":
            out["frames"], out["plays"] = struct.unpack(">II", body)
        elif kind == b"fcTL":
            seq, w, h, x, y, num, den, dispose, blend = struct.unpack(">IIIIIHHBB", body)
            out["fctl"].append((w, h, x, y, num / (den or 100), dispose, blend))
        elif kind == b"IDAT":
            out["idat"] += 1
        elif kind == b"IEND":
            break
        i += 12 + size
    return out


def _apng(path: Path) -> Facts:
    f = Facts("apng", codec="apng")
    data = path.read_bytes()
    try:
        png = parse_png(data)
    except struct.error as exc:
        raise InputProblem(f"{path}: not a readable PNG file ({exc})") from None
    f.width, f.height = png.get("width", 0), png.get("height", 0)
    colour, depth = png.get("colour"), png.get("depth")
    f.pix_fmt = {6: "rgba", 3: "pal8", 2: "rgb24", 4: "ya8", 0: "gray"}.get(colour, "?")
    if depth != 8:
        f.pix_fmt += f" ({depth}-bit)"
    f.alpha_declared = colour in (4, 6) or (colour == 3 and b"tRNS" in data)
    if "frames" not in png:
        f.codec = "png"
        f.problems.append("animation: a still PNG (no acTL chunk)")
        return f
    f.loop = png["plays"]
    f.durations = [row[4] for row in png["fctl"]]
    if png["frames"] != len(png["fctl"]):
        f.problems.append(f"frames: acTL says {png['frames']}, the file has {len(png['fctl'])}")
    if not png["crc_ok"]:
        f.problems.append("file: a chunk's CRC is wrong")
    first = True
    try:
        with av.open(io.BytesIO(data), format="apng") as c:
            for frame in c.decode(video=0):
                first = _note_alpha(f, frame.to_ndarray(format="rgba")[..., 3], first)
    except av.FFmpegError as exc:
        f.problems.append(f"frames: the APNG does not decode ({exc})")
    return f
