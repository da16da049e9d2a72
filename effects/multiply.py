"""multiply: multiply-blend a texture onto the subject's colour (paper, grain)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from effects.base import Geometry, param, register
from effects.textures import check_texture, load_rgb
from keyer._jit import kernel_parallel, prange


@kernel_parallel
def multiply_kernel(src, factor, out):
    """``out.rgb = src.rgb * factor`` (factor in 0..1, per pixel and channel); alpha copied."""
    h, w = src.shape[0], src.shape[1]
    for i in prange(h):
        for j in range(w):
            for c in range(3):
                out[i, j, c] = np.uint8(src[i, j, c] * factor[i, j, c] + np.float32(0.5))
            out[i, j, 3] = src[i, j, 3]


@register("multiply")
@dataclass(frozen=True, kw_only=True)
class Multiply:
    """Multiply a texture onto the subject's colour; alpha unchanged.

    Notes: ``out = src * (1 - o + o * tex)`` with tex in 0..1: a white texture, or opacity 0,
    changes nothing.
    """

    texture: str = param("paper", help="image path, or 'paper' (built-in paper grain)")
    opacity: float = param(0.5, lo=0, hi=1, help="strength of the blend")
    fit: str = param("tile", choices=("tile", "stretch"), help="repeat the texture or stretch it")

    def __post_init__(self) -> None:
        check_texture("multiply", "texture", self.texture)

    def bind(self, g: Geometry) -> "MultiplyOp":
        tex = load_rgb(self.texture, g.width, g.height, self.fit).astype(np.float32) / 255.0
        factor = (1.0 - self.opacity + self.opacity * tex).astype(np.float32)
        return MultiplyOp(np.ascontiguousarray(factor))


class MultiplyOp:
    def __init__(self, factor: np.ndarray) -> None:
        self.factor = factor

    def __call__(self, src: np.ndarray, out: np.ndarray, t: float) -> None:
        multiply_kernel(src, self.factor, out)

    def close(self) -> None:
        self.factor = None


def warm() -> None:
    s = np.zeros((2, 2, 4), np.uint8)
    multiply_kernel(s, np.ones((2, 2, 3), np.float32), np.empty_like(s))
