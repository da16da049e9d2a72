"""add: add (linear dodge) a texture or a colour onto the subject, clamped."""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from keyer.effects.base import Geometry, param, register
from keyer.colour import parse_color
from keyer.effects.textures import MIN_RUN, check_texture, load_tile, with_alpha
from keyer.effects import _composite
from keyer._jit import kernel


@kernel
def add_kernel(src, addend, y0, y1, x0, x1, out):
    """``out = min(255, src + addend)`` inside the box: ``addend`` is the texture with 0 for
    alpha (so alpha is copied). ``src`` and ``out`` are (H, W * 4) rows of bytes
    (``_composite.byte_rows``), ``addend`` a tile of them, (th, tw * 4), repeated: pixel
    (i, j) takes the tile's (i % th, j % tw).

    Each row of the box goes as flat runs of bytes within one copy of the tile, indexed from 0
    (a loop from ``x0`` would keep Numba's negative-index check and not vectorise).
    """
    th = addend.shape[0]
    tw = addend.shape[1] // 4
    for i in range(y0, y1):
        row = addend[i % th]
        j = x0
        while j < x1:
            c = j % tw
            n = min(x1 - j, tw - c)
            s = src[i, 4 * j:4 * (j + n)]
            d = row[4 * c:4 * (c + n)]
            o = out[i, 4 * j:4 * (j + n)]
            for k in range(s.size):
                v = np.uint16(s[k]) + np.uint16(d[k])
                o[k] = np.uint8(min(v, np.uint16(255)))
            j += n


@register("add")
@dataclass(frozen=True, kw_only=True)
class Add:
    """Add a texture or colour onto the subject (linear dodge), clamped; alpha unchanged.

    Notes: ``out = min(1, src + o * tex)``; with ``texture=none`` the colour is added instead.
    Only the subject's box grown by ``_composite.COLOUR_REACH`` px is computed; beyond it
    (alpha 0, colour unseen and unread) the source is copied.
    """

    texture: str = param("paper", help="image path, 'paper', or 'none' to add `color`")
    color: str = param("#202020", help="colour added when texture=none")
    opacity: float = param(0.12, lo=0, hi=1, help="strength")
    fit: str = param("tile", choices=("tile", "stretch"), help="repeat the texture or stretch it")

    def __post_init__(self) -> None:
        check_texture("add", "texture", self.texture, ("paper", "none"))
        parse_color(self.color)

    def bind(self, g: Geometry) -> "AddOp":
        # Each texture value's addend, once (a 256-entry table applied by OpenCV's LUT: a
        # fraction of the start-up of converting the whole texture to float32 and back). A
        # tiled texture is kept as one tile, a colour as one row (see load_tile).
        table = np.clip(np.arange(256, dtype=np.float32) * self.opacity + 0.5, 0, 255).astype(np.uint8)
        if self.texture == "none":
            rgb = np.empty((1, min(g.width, MIN_RUN), 3), np.uint8)
            rgb[...] = table[np.array(parse_color(self.color)[:3], np.uint8)]
        else:
            rgb = cv2.LUT(load_tile(self.texture, g.width, g.height, self.fit), table)
        return AddOp(with_alpha(rgb, 0))                           # alpha: + 0


class AddOp:
    def __init__(self, addend: np.ndarray) -> None:
        self.addend = _composite.byte_rows(addend)   # (th, tw * 4) bytes, as the kernel takes

    def __call__(self, src: np.ndarray, out: np.ndarray, t: float,
                 boxes: _composite.Boxes | None = None) -> None:
        h, w = src.shape[0], src.shape[1]
        box = _composite.pad(_composite.find_subject(src, boxes), _composite.COLOUR_REACH, h, w)
        add_kernel(_composite.byte_rows(src), self.addend, *box, _composite.byte_rows(out))
        _composite.copy_outside(src, box, out, boxes)

    def close(self) -> None:
        self.addend = None


def warm() -> None:
    _composite.warm("subject_box")   # the shared kernels it runs
    s = np.zeros((2, 2, 4), np.uint8)
    rows = _composite.byte_rows(s)
    add_kernel(rows, rows, 0, 2, 0, 2, np.empty_like(rows))
