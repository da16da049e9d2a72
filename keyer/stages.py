"""The map stages between decode and encode: key (with rotation and padding) and effects.

Each is bound once per job: it allocates a small ring of output buffers up front and reuses them
frame after frame. A ring of ``n`` buffers is safe while at most ``n - 1`` frames it produced are
still alive downstream (the pipeline sizes rings from its queue depths).
"""
from __future__ import annotations

from typing import Callable, Sequence

import av
import cv2
import numpy as np

from keyer.colour import RANGE_LIMITED, SPACE_BT709, ToRGBA, plane_array, ycbcr_constants
from keyer.frame import EMPTY, Box, Boxes, Frame
from keyer.keying import Keyer, KeySettings, PlanarKeyer
from keyer.probe import StreamInfo

_ROTATE = {90: cv2.ROTATE_90_COUNTERCLOCKWISE, 180: cv2.ROTATE_180, 270: cv2.ROTATE_90_CLOCKWISE}
_UNROTATE = {90: cv2.ROTATE_90_CLOCKWISE, 180: cv2.ROTATE_180, 270: cv2.ROTATE_90_COUNTERCLOCKWISE}


class Ring:
    """``n`` preallocated (H, W, 4) uint8 buffers handed out in turn."""

    def __init__(self, n: int, height: int, width: int) -> None:
        self.buffers = [np.zeros((height, width, 4), np.uint8) for _ in range(max(1, n))]
        self.i = 0

    def next(self) -> np.ndarray:
        buf = self.buffers[self.i]
        self.i = (self.i + 1) % len(self.buffers)
        return buf


def upright_size(width: int, height: int, rotation: int, pad: int = 0) -> tuple[int, int]:
    """(width, height) of a coded ``width`` x ``height`` picture turned upright and padded."""
    if rotation % 180:
        width, height = height, width
    return width + 2 * pad, height + 2 * pad


class Placement:
    """Where a keyed picture in coded orientation goes: turned upright and padded into the
    output buffer. With neither to do, the key writes the output buffer itself (``target``)."""

    def __init__(self, width: int, height: int, rotation: int, pad: int) -> None:
        self.rotation = rotation % 360
        self.pad = pad
        self.out_size = upright_size(width, height, rotation, pad)
        ow, oh = self.out_size[0] - 2 * pad, self.out_size[1] - 2 * pad
        direct = self.rotation == 0 and pad == 0
        self.work = None if direct else np.zeros((height, width, 4), np.uint8)
        self.rotated = np.zeros((oh, ow, 4), np.uint8) if (self.rotation and pad) else None

    def target(self, out: np.ndarray) -> np.ndarray:
        """The buffer to key into for ``out``."""
        return out if self.work is None else self.work

    def place(self, out: np.ndarray) -> None:
        """Move what was keyed into ``target(out)`` into ``out`` (the padding stays as it is:
        transparent, since nothing else writes it)."""
        if self.work is None:
            return
        p = self.pad
        inner = out[p:out.shape[0] - p, p:out.shape[1] - p] if p else out
        if self.rotation and p:
            cv2.rotate(self.work, _ROTATE[self.rotation], dst=self.rotated)
            inner[...] = self.rotated
        elif self.rotation:
            cv2.rotate(self.work, _ROTATE[self.rotation], dst=out)
        else:
            inner[...] = self.work


class KeyStage:
    """Decoded picture -> keyed, upright, padded RGBA."""

    name = "key"

    def __init__(self, settings: KeySettings, width: int, height: int, rotation: int,
                 pad: int, ring: int, scale_to: tuple[int, int] | None = None) -> None:
        self.to_rgba = ToRGBA()
        self.scale_to = scale_to
        if scale_to:
            width, height = scale_to
        self.keyer = Keyer(settings, width, height)
        self.placement = Placement(width, height, rotation, pad)
        self.out_size = self.placement.out_size
        self.ring = Ring(ring, self.out_size[1], self.out_size[0])

    def __call__(self, frame: Frame) -> Frame:
        out = self.ring.next()
        work = self.placement.target(out)
        source = frame.source
        if self.scale_to:
            # --fit: swscale's area filter, once per frame, before any of our work
            source = source.reformat(width=self.scale_to[0], height=self.scale_to[1],
                                     interpolation="AREA")
        self.to_rgba(source, work)
        self.keyer(work)
        self.placement.place(out)
        frame.rgba = out
        frame.source = None
        return frame


class PlanarKeyStage:
    """Decoded 8-bit 4:2:0 picture -> keyed frame, with no RGB frame before the key.

    The fast path for 8-bit 4:2:0 sources keyed at an even size (``planar_key_fits``; with
    ``scale``, each picture is first scaled to ``width`` x ``height`` by swscale's area filter,
    as ``--fit`` does). ``width`` x ``height`` is the coded orientation; ``rotation`` and
    ``pad`` place the result upright and padded.

    With ``pix_fmt`` (an 8-bit 4:2:0 output's: ``yuva420p``, or ``yuv420p`` composited over
    ``background``, upright Y'CbCr planes; no padding) it writes the encoder's frame directly,
    into a ring of ``ring`` ``av.VideoFrame`` s reused in turn (fresh 5 MB frames at 1080p cost
    ~3 ms of page faults each); a rotated picture is keyed into scratch planes and turned into
    the frame plane by plane (OpenCV). libx264 and libvpx copy a picture when it is sent, so
    none holds a ring frame once ``encode`` returns; ``make_writable`` checks it anyway (a
    buffer still referenced elsewhere is replaced, never overwritten). With ``pix_fmt`` None it
    writes straight RGBA into a ring of ``ring`` buffers, for the effects or an encoder that
    takes RGBA; nothing else writes those buffers, so it remembers per buffer a box outside
    which it is all zero (only that much of the transparent part is cleared) and notes the new
    picture's box as ``frame.extent`` (when it keys into the buffer itself: no rotation or
    padding). Either way ``ring`` must exceed the keyed frames alive downstream
    (``keyer.pipeline.RING``).
    """

    name = "key"
    SOURCES = ("yuv420p", "yuvj420p")

    def __init__(self, settings: KeySettings, width: int, height: int, pix_fmt: str | None,
                 background: tuple | None = None, ring: int = 1, rotation: int = 0,
                 pad: int = 0, scale: bool = False) -> None:
        if pix_fmt and pad:
            raise ValueError("PlanarKeyStage writes padded pictures as RGBA only")
        self.width, self.height, self.pix_fmt, self.scale = width, height, pix_fmt, scale
        self.placement = Placement(width, height, rotation, pad) if pix_fmt is None else None
        ow, oh = upright_size(width, height, rotation, pad)
        self.turn_code = _ROTATE.get(rotation % 360)
        if background is not None and self.turn_code is not None:   # upright -> coded
            background = tuple(cv2.rotate(p, _UNROTATE[rotation % 360]) for p in background)
        self.keyer = PlanarKeyer(settings, width, height, background)
        self.alpha = pix_fmt == "yuva420p"
        self.ring = Ring(ring, oh, ow) if pix_fmt is None else None
        # id(ring buffer) -> the box outside which it is all zero (it starts all zero)
        self.extents = {id(b): EMPTY for b in self.ring.buffers} if self.ring else {}
        self.frames = [av.VideoFrame(ow, oh, pix_fmt) for _ in range(max(1, ring))] if pix_fmt else []
        self.turn = 0
        self.scratch = None
        if pix_fmt and self.turn_code is not None:
            hc, wc = height // 2, width // 2
            self.scratch = [np.zeros((height, width), np.uint8), np.zeros((hc, wc), np.uint8),
                            np.zeros((hc, wc), np.uint8)]
            if self.alpha:
                self.scratch.append(np.zeros((height, width), np.uint8))
        self._key = None
        self._consts = None

    def __call__(self, frame: Frame) -> Frame:
        src = frame.source
        if self.scale:
            src = src.reformat(width=self.width, height=self.height, interpolation="AREA")
        if src.format.name not in self.SOURCES:   # a stream that changes format mid-way
            src = src.reformat(format="yuv420p")
        key = (src.format.name, int(src.colorspace), int(src.color_range))
        if key != self._key:
            self._key, self._consts = key, ycbcr_constants(src)
        w, cw = self.width, self.width // 2
        planes = (plane_array(src.planes[0], np.uint8, w), plane_array(src.planes[1], np.uint8, cw),
                  plane_array(src.planes[2], np.uint8, cw))
        frame.source = None
        if self.ring is not None:
            frame.rgba = out = self.ring.next()
            if self.placement.work is None:   # keyed into the ring's buffer itself
                frame.extent = self.extents[id(out)] = self.keyer.to_rgba(
                    *planes, self._consts, out, self.extents[id(out)])
            else:
                self.keyer.to_rgba(*planes, self._consts, self.placement.target(out))
                self.placement.place(out)
            return frame
        out = self.frames[self.turn]
        self.turn = (self.turn + 1) % len(self.frames)
        out.make_writable()
        ow = out.width
        dst = [plane_array(out.planes[0], np.uint8, ow), plane_array(out.planes[1], np.uint8, ow // 2),
               plane_array(out.planes[2], np.uint8, ow // 2)]
        if self.alpha:
            dst.append(plane_array(out.planes[3], np.uint8, ow))
        keyed = dst if self.scratch is None else self.scratch
        self.keyer(*planes, self._consts, *keyed[:3], keyed[3] if self.alpha else None)
        if self.scratch is not None:
            for a, b in zip(self.scratch, dst):
                cv2.rotate(a, self.turn_code, dst=b)
        out.colorspace, out.color_range = SPACE_BT709, RANGE_LIMITED
        frame.video = out
        return frame


def planar_key_fits(info: StreamInfo, coded_size: tuple[int, int]) -> bool:
    """Whether ``PlanarKeyStage`` can key this stream: 8-bit 4:2:0, keyed at an even size
    (``coded_size``, after any --fit). Everything else takes ``KeyStage``."""
    w, h = coded_size
    return info.pix_fmt in PlanarKeyStage.SOURCES and w % 2 == 0 and h % 2 == 0


def planar_output(output_pix_fmt: str | None, effects: Sequence, pad: int = 0) -> bool:
    """Whether the planar key can write the encoder's frame itself: no effects, no padding,
    and an 8-bit 4:2:0 output (else it writes RGBA)."""
    return not effects and not pad and output_pix_fmt in ("yuva420p", "yuv420p")


class EffectsStage:
    """Applies a chain of bound effects, ping-ponging between the ring's buffer and one scratch.

    Effects work inside the subject's box and copy (or clear) the rest. The stage passes an
    ``keyer.frame.Boxes`` along the chain, so the subject is searched for once (within
    the frame's ``extent`` when the key says it is all zero beyond), and it remembers, per
    buffer, a box outside which the buffer is all zero: an effect then copies only where its
    input and the buffer's old content can differ, not the whole frame. Nothing but this stage
    writes its buffers (the encoder only reads the ring's), so what it remembers holds.

    Buffers: the last effect writes the ring's next buffer, the one before it a scratch buffer,
    the one before that the ring's buffer again, and so on (an effect never writes the buffer
    it reads), so a chain of any length needs one scratch frame, not two.

    With ``convert`` (the sink's ``converter``: RGBA -> the encoder's frame), the stage turns
    each result into the encoder's frame itself (``frame.video``), so nothing downstream reads
    its RGBA buffers, and it needs one of its own: the effects ping-pong between it and the
    key's buffer they were handed (the first effect reads that one, the second writes it, ...).
    Nobody else reads a handed-over buffer, and the key writes it again only once this stage
    took its next frame; before that, the stage clears what it wrote there, so the buffer is
    back to what the key expects: all zero outside the key's own picture (16 MB less at
    1080p than a ring of two and a scratch frame). The effects' own
    per-frame arrays (those each op names in ``scratch_arrays``: written before they are read
    in every call, nothing kept from one frame to the next) share one buffer
    (``share_scratch``): the effects run one after another, so the chain needs the largest
    effect's scratch, not their sum (9.9 MB at 1080p for ``--effects all``, alpha-bevel's).

    While it is open, OpenCV runs each call in ``opencv_threads`` threads (the job's
    ``ThreadPlan``: one, as the effects' calls work on one box each in a thread of their own
    beside the key's and the encoder's); ``close()`` puts the previous setting back.
    """

    name = "effects"

    def __init__(self, ops: Sequence, width: int, height: int, ring: int,
                 opencv_threads: int = 1, convert: Callable | None = None) -> None:
        self._new_boxes = Boxes
        self.ops = list(ops)
        self.scratch = [np.zeros((height, width, 4), np.uint8) for _ in range(min(1, len(ops) - 1))]
        self.shared = share_scratch(self.ops)
        self.convert = convert
        if convert is not None:
            self.scratch = []
        self.ring = Ring(1 if convert else ring, height, width)
        # id(buffer) -> the box outside which it is all zero (new buffers are all zero)
        self.extents = {id(b): EMPTY for b in (*self.scratch, *self.ring.buffers)}
        self._cv_threads: int | None = cv2.getNumThreads()
        cv2.setNumThreads(opencv_threads)

    def __call__(self, frame: Frame) -> Frame:
        src = frame.rgba
        t = frame.time
        last = len(self.ops) - 1
        out = self.ring.next()
        if self.convert is None:
            pair = (out, self.scratch[0]) if last else (out,)   # the last effect writes out
            turn = last
        else:   # the first effect writes out, the second the key's buffer, ...
            pair, turn = (out, src), 0
            self.extents[id(src)] = frame.extent   # what the key left there
        boxes = self._new_boxes(src=frame.extent)
        for i, op in enumerate(self.ops):
            dst = pair[abs(turn - i) % 2]
            boxes.out = self.extents[id(dst)]
            op(src, dst, t, boxes)
            self.extents[id(dst)] = boxes.src = boxes.out
            src = dst
        frame.extent = boxes.out
        if self.convert is None:
            frame.rgba = src
            return frame
        frame.video, frame.rgba = self.convert(src), None
        keyed = pair[1]
        written = self.extents.pop(id(keyed))
        if last:   # the key's buffer was written: all zero again, as the key's record allows
            _clear(keyed, written)
        return frame

    def close(self) -> None:
        """Free the effects' buffers and restore OpenCV's thread count (once; again is a no-op)."""
        if self._cv_threads is None:
            return
        cv2.setNumThreads(self._cv_threads)
        self._cv_threads = None
        for op in self.ops:
            op.close()
        self.shared = None


def _clear(buffer: np.ndarray, box: Box | None) -> None:
    """Zero ``buffer`` within ``box`` (all of it when the box is not known)."""
    if box is None:
        buffer.fill(0)
    elif box[0] < box[1] and box[2] < box[3]:
        buffer[box[0]:box[1], box[2]:box[3]] = 0


def share_scratch(ops: Sequence) -> np.ndarray | None:
    """Make the ops' per-frame scratch arrays views of one buffer, which it returns (None if
    they have none): the arrays each op names in its ``scratch_arrays``, laid out one after
    another (on 64-byte boundaries) from the buffer's start, so the buffer is as large as the
    largest op's scratch. Only for ops that run one at a time, each writing its scratch before
    reading it.

    The arrays the ops made in ``bind`` were never written (``np.zeros`` maps pages lazily), so
    replacing them costs no resident memory; the views keep the arrays' shapes, dtypes and
    alignment, so kernels take them as they took the originals (the same compiled variants).
    """
    layouts, size = [], 0
    for op in ops:
        offset, placed = 0, []
        for name in getattr(op, "scratch_arrays", ()):
            a = getattr(op, name, None)
            if a is None:
                continue
            placed.append((name, offset, a.shape, a.dtype))
            offset += -(-a.nbytes // 64) * 64
        layouts.append((op, placed))
        size = max(size, offset)
    if not size:
        return None
    shared = np.zeros(size, np.uint8)
    for op, placed in layouts:
        for name, offset, shape, dtype in placed:
            n = int(np.prod(shape)) * dtype.itemsize
            setattr(op, name, shared[offset:offset + n].view(dtype).reshape(shape))
    return shared
