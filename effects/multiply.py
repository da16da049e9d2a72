"""multiply: multiply-blend a texture onto the subject's colour (paper, grain)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from keyer.effects.base import Geometry, param, register
from keyer.effects.textures import check_texture, load_rgb, with_alpha
from keyer.effects import _composite
from keyer._jit import kernel

KERNEL_DEPS = (_composite,)   # kernels this effect runs from other modules


@kernel
def multiply_kernel(src, tex, base, gain, y0, y1, x0, x1, out):
    """``out = src * (base + gain * tex / 255)`` inside the box: ``tex`` is the texture with
    255 in its alpha channel (``base + gain`` is within 1e-7 of 1, so alpha comes out exactly
    as it went in); ``base``, ``gain`` float32. All three are (H, W * 4) rows of bytes
    (``_composite.byte_rows``).

    Each row of the box is one flat run of bytes indexed from 0 (a loop from ``x0`` would keep
    Numba's negative-index check and not vectorise: 3x slower).
    """
    a, b = 4 * x0, 4 * x1
    for i in range(y0, y1):
        s = src[i, a:b]
        t = tex[i, a:b]
        o = out[i, a:b]
        for k in range(s.size):
            f = base + gain * (np.float32(t[k]) / np.float32(255.0))
            o[k] = np.uint8(s[k] * f + np.float32(0.5))


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
        # The texture stays uint8 and the kernel makes each factor as it goes: 8 MB at 1080p
        # instead of a 33 MB float32 factor frame (whose making cost 0.05-0.3 s of start-up),
        # and a quarter of the bytes read per frame.
        tex = with_alpha(load_rgb(self.texture, g.width, g.height, self.fit), 255)
        return MultiplyOp(tex, np.float32(1.0 - self.opacity), np.float32(self.opacity))


class MultiplyOp:
    def __init__(self, tex: np.ndarray, base: np.float32, gain: np.float32) -> None:
        self.tex = _composite.byte_rows(tex)   # (H, W * 4) bytes, as the kernel takes
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
    s = np.zeros((2, 2, 4), np.uint8)
    rows = _composite.byte_rows(s)
    multiply_kernel(rows, rows, np.float32(0.5), np.float32(0.5), 0, 2, 0, 2, np.empty_like(rows))
