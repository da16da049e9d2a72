"""``keyer run --for ... --extras``: the pack's other images, made from the same framed spool.

* WhatsApp: the tray icon, ``<name>-tray.png``, 96x96 PNG <= 50 KB (the first frame).
* Telegram: the pack thumbnail, ``<name>-thumb.webm``, 100x100 VP9 with alpha <= 32 KB, <= 3 s
  (the sticker itself, by the same size search).
* LINE: the main image ``<name>-main.png`` (240x240) and the tab image ``<name>-tab.png``
  (96x74), PNG, from the first frame.

Each is written to a temporary file and renamed into place; none replaces an existing file
without ``--overwrite`` (``extras_paths`` checks them before any work starts).
"""
from __future__ import annotations

import os
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from keyer.errors import OutputProblem
from keyer.platforms import Profile

TRAY_BYTES = 50_000
THUMB = Profile("telegram-thumbnail", "webm", ".webm", 100, 100, "exact", 3.0, 30, 32,
                loop="player")
STILLS = {"whatsapp": {"tray": (96, 96)}, "line": {"main": (240, 240), "tab": (96, 74)}}


def extras_paths(final: Path, prof: Profile) -> dict[str, Path]:
    """The extra files ``--extras`` writes for ``prof`` beside ``final``."""
    stem = final.with_suffix("")
    paths = {name: Path(f"{stem}-{name}.png") for name in STILLS.get(prof.name, {})}
    if prof.name == "telegram":
        paths["thumb"] = Path(f"{stem}-thumb.webm")
    return paths


def check_extras(final: Path, prof: Profile, overwrite: bool) -> None:
    for path in extras_paths(final, prof).values():
        if path.exists() and not overwrite:
            raise OutputProblem(f"{path}: already exists (use --overwrite to replace it)")


def first_frame(spool) -> np.ndarray:
    for _, _, rgba in spool.read():
        return rgba.copy()
    raise OutputProblem("no frame to make the pack images from")


def fit_still(rgba: np.ndarray, width: int, height: int) -> np.ndarray:
    """The frame's subject (its alpha box) fitted into ``width`` x ``height``, centred."""
    from keyer.spool import alpha_box, resize_rgba

    y0, y1, x0, x1 = alpha_box(rgba)
    if y1 <= y0:
        return np.zeros((height, width, 4), np.uint8)
    crop = rgba[y0:y1, x0:x1]
    s = min(width / crop.shape[1], height / crop.shape[0])
    w, h = max(1, round(crop.shape[1] * s)), max(1, round(crop.shape[0] * s))
    out = np.zeros((height, width, 4), np.uint8)
    ox, oy = (width - w) // 2, (height - h) // 2
    out[oy:oy + h, ox:ox + w] = resize_rgba(crop, w, h)
    return out


def png_bytes(rgba: np.ndarray, limit: int | None = None) -> bytes:
    """RGBA PNG, colour rounded more and more until it is under ``limit`` bytes."""
    from keyer.stickersearch import quantize

    for step in (1, 4, 8, 16, 32, 64):
        img = rgba.copy()
        if step > 1:
            quantize(img, step)
        img[img[..., 3] == 0] = 0
        ok, buf = cv2.imencode(".png", cv2.cvtColor(img, cv2.COLOR_RGBA2BGRA),
                               [cv2.IMWRITE_PNG_COMPRESSION, 9])
        if limit is None or len(buf) <= limit:
            return buf.tobytes()
    raise OutputProblem(f"cannot make a PNG under {limit} bytes")


def _write(path: Path, data: bytes, overwrite: bool) -> None:
    from keyer.files import publish

    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".keyer-tmp", dir=path.parent)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    if path.exists() and not overwrite:
        os.unlink(tmp)
        raise OutputProblem(f"{path}: already exists (use --overwrite to replace it)")
    publish(tmp, path)


def write_extras(spool, layout, prof: Profile, final: Path, overwrite: bool, log: Any,
                 work: Path) -> dict[str, Path]:
    """Write the extras of ``prof`` beside ``final``; log ``sticker_extra`` for each."""
    from keyer.spool import frame_spool
    from keyer.stickersearch import Search
    from keyer.stickercheck import check

    paths = extras_paths(final, prof)
    first = None
    for name, (width, height) in STILLS.get(prof.name, {}).items():
        first = first_frame(spool) if first is None else first
        data = png_bytes(fit_still(first, width, height),
                         TRAY_BYTES if name == "tray" else None)
        _write(paths[name], data, overwrite)
        log.info("sticker_extra", kind=name, path=str(paths[name]), size=[width, height],
                 bytes=len(data))
    if "thumb" in paths:
        # the sticker's canvas fitted into 100x100, then the same size search against 32 KB
        w, h = layout.canvas
        box = (0, h, 0, w)
        cw, ch, _, _ = THUMB.fit(w, h)
        thumb_layout = replace(layout, canvas=(100, 100), content=(cw, ch),
                               offset=((100 - cw) // 2, (100 - ch) // 2))
        small = frame_spool(spool, thumb_layout, box, work, name="thumb.spool")
        fps = min(30.0, max(1.0, small.count / (layout.length_ms / 1000)))
        chosen = Search(small, thumb_layout, THUMB, work, log, 0).run(fps)
        problems = check(chosen.path, THUMB)
        if problems:
            raise OutputProblem(f"{paths['thumb']}: not published: " + "; ".join(problems))
        from keyer.files import publish

        if paths["thumb"].exists() and not overwrite:
            raise OutputProblem(f"{paths['thumb']}: already exists (use --overwrite to replace it)")
        publish(chosen.path, paths["thumb"])
        log.info("sticker_extra", kind="thumb", path=str(paths["thumb"]), size=[100, 100],
                 bytes=chosen.bytes)
    return paths
