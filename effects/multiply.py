"""multiply: multiply-blend a texture onto the subject's colour (paper, grain)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from effects.base import Geometry, param, register
from effects.textures import check_texture, load_rgb
from effects import _composite
from keyer._jit import kernel

KERNEL_DEPS = (_composite,)   # kernels this effect runs from other modules


@kernel
def multiply_kernel(src, factor, y0, y1, x0, x1, out):
    """``out = src * factor`` inside the box: ``factor`` is (H, W, 4) float32, 0..1 per pixel
    and channel, 1 for alpha (so alpha is copied exactly).

    Each row of the box is one flat run of bytes indexed from 0 (a loop from ``x0`` would keep
    Numba's negative-index check and not vectorise: 3x slower).
    """
    h, w = src.shape[0], src.shape[1]
    a, b = 4 * x0, 4 * x1
    for i in range(y0, y1):
        s = src[i].reshape(w * 4)[a:b]
        f = factor[i].reshape(w * 4)[a:b]
        o = out[i].reshape(w * 4)[a:b]
        for k in range(s.size):
            o[k] = np.uint8(s[k] * f[k] + np.float32(0.5))


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
        tex = load_rgb(self.texture, g.width, g.height, self.fit).astype(np.float32) / 255.0
        factor = np.ones((g.height, g.width, 4), np.float32)        # alpha: x 1, exact
        factor[..., :3] = 1.0 - self.opacity + self.opacity * tex
        return MultiplyOp(factor)


class MultiplyOp:
    def __init__(self, factor: np.ndarray) -> None:
        self.factor = factor

    def __call__(self, src: np.ndarray, out: np.ndarray, t: float) -> None:
        h, w = src.shape[0], src.shape[1]
        box = _composite.pad(_composite.subject_box(src), _composite.COLOUR_REACH, h, w)
        multiply_kernel(src, self.factor, *box, out)
        _composite.copy_outside(src, box, out)

    def close(self) -> None:
        self.factor = None


def warm() -> None:
    s = np.zeros((2, 2, 4), np.uint8)
    multiply_kernel(s, np.ones((2, 2, 4), np.float32), 0, 2, 0, 2, np.empty_like(s))
