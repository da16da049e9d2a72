"""multiply: multiply-blend a texture onto the subject's colour (paper, grain)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from keyer.effects.base import Geometry, param, register
from keyer.effects.textures import check_texture, load_tile, with_alpha
from keyer.effects import _composite
from keyer._jit import kernel


@kernel
def multiply_kernel(src, tex, base, gain, y0, y1, x0, x1, out):
    """``out = src * (base + gain * tex / 255)`` inside the box: ``tex`` is the texture with
    255 in its alpha channel (``base + gain`` is within 1e-7 of 1, so alpha comes out exactly
    as it went in); ``base``, ``gain`` float32. ``src`` and ``out`` are (H, W * 4) rows of
    bytes (``_composite.byte_rows``), ``tex`` a tile of them, (th, tw * 4), repeated: pixel
    (i, j) takes the tile's (i % th, j % tw).

    Each row of the box goes as flat runs of bytes within one copy of the tile, indexed from 0
    (a loop from ``x0`` would keep Numba's negative-index check and not vectorise: 3x slower).
    """
    th = tex.shape[0]
    tw = tex.shape[1] // 4
    for i in range(y0, y1):
        row = tex[i % th]
        j = x0
        while j < x1:
            c = j % tw
            n = min(x1 - j, tw - c)
            s = src[i, 4 * j:4 * (j + n)]
            t = row[4 * c:4 * (c + n)]
            o = out[i, 4 * j:4 * (j + n)]
            for k in range(s.size):
                f = base + gain * (np.float32(t[k]) / np.float32(255.0))
                o[k] = np.uint8(s[k] * f + np.float32(0.5))
            j += n


@register("multiply")
@dataclass(frozen=True, kw_only=True)
class Multiply:
    """Multiply a texture onto the subject's colour; alpha unchanged.

    Notes: ``out = src * (1 - o + o * tex)`` with tex in 0..1: a white texture, or opacity 0,
    changes nothing. Only the subject's box grown by ``_composite.COLOUR_REACH`` px is computed;
    beyond it (alpha 0, colour unseen and unread) the source is copied.
    """

    texture: str = param("paper", help="image path, or 'paper' (built-in paper grain)")
    opacity: float = param(0.5, lo=0, hi=1, help="strength of the blend")
    fit: str = param("tile", choices=("tile", "stretch"), help="repeat the texture or stretch it")

    def __post_init__(self) -> None:
        check_texture("multiply", "texture", self.texture)

    def bind(self, g: Geometry) -> "MultiplyOp":
        # The texture stays uint8 and the kernel makes each factor as it goes (a float32
        # factor frame would be 33 MB at 1080p, and its making cost 0.05-0.3 s of start-up);
        # tiled, it is kept as one tile (the paper's: 1 MB, not the frame's 8 MB).
        tex = with_alpha(load_tile(self.texture, g.width, g.height, self.fit), 255)
        return MultiplyOp(tex, np.float32(1.0 - self.opacity), np.float32(self.opacity))


class MultiplyOp:
    def __init__(self, tex: np.ndarray, base: np.float32, gain: np.float32) -> None:
        self.tex = _composite.byte_rows(tex)   # (th, tw * 4) bytes, as the kernel takes
        self.base, self.gain = base, gain

    def __call__(self, src: np.ndarray, out: np.ndarray, t: float,
                 boxes: _composite.Boxes | None = None) -> None:
        h, w = src.shape[0], src.shape[1]
        box = _composite.pad(_composite.find_subject(src, boxes), _composite.COLOUR_REACH, h, w)
        multiply_kernel(_composite.byte_rows(src), self.tex, self.base, self.gain, *box,
                        _composite.byte_rows(out))
        _composite.copy_outside(src, box, out, boxes)

    def close(self) -> None:
        self.tex = None


def warm() -> None:
    _composite.warm("subject_box")   # the shared kernels it runs
    s = np.zeros((2, 2, 4), np.uint8)
    rows = _composite.byte_rows(s)
    multiply_kernel(rows, rows, np.float32(0.5), np.float32(0.5), 0, 2, 0, 2, np.empty_like(rows))
