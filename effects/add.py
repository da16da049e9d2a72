"""add: add (linear dodge) a texture or a colour onto the subject, clamped."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from effects.base import Geometry, param, register
from effects.colors import parse_color
from effects.textures import check_texture, load_rgb
from keyer._jit import kernel_parallel, prange


@kernel_parallel
def add_kernel(src, addend, out):
    """``out.rgb = min(255, src.rgb + addend)`` (addend uint8 per pixel); alpha copied."""
    h, w = src.shape[0], src.shape[1]
    for i in prange(h):
        for j in range(w):
            for c in range(3):
                v = np.int32(src[i, j, c]) + np.int32(addend[i, j, c])
                out[i, j, c] = 255 if v > 255 else np.uint8(v)
            out[i, j, 3] = src[i, j, 3]


@register("add")
@dataclass(frozen=True, kw_only=True)
class Add:
    """Add a texture or colour onto the subject (linear dodge), clamped; alpha unchanged.

    Notes: ``out = min(1, src + o * tex)``; with ``texture=none`` the colour is added instead.
    """

    texture: str = param("paper", help="image path, 'paper', or 'none' to add `color`")
    color: str = param("#202020", help="colour added when texture=none")
    opacity: float = param(0.12, lo=0, hi=1, help="strength")
    fit: str = param("tile", choices=("tile", "stretch"), help="repeat the texture or stretch it")

    def __post_init__(self) -> None:
        check_texture("add", "texture", self.texture, ("paper", "none"))
        parse_color(self.color)

    def bind(self, g: Geometry) -> "AddOp":
        if self.texture == "none":
            tex = np.empty((g.height, g.width, 3), np.float32)
            tex[...] = np.array(parse_color(self.color), np.float32)
        else:
            tex = load_rgb(self.texture, g.width, g.height, self.fit).astype(np.float32)
        addend = np.clip(tex * self.opacity + 0.5, 0, 255).astype(np.uint8)
        return AddOp(addend)


class AddOp:
    def __init__(self, addend: np.ndarray) -> None:
        self.addend = addend

    def __call__(self, src: np.ndarray, out: np.ndarray, t: float) -> None:
        add_kernel(src, self.addend, out)

    def close(self) -> None:
        self.addend = None


def warm() -> None:
    s = np.zeros((2, 2, 4), np.uint8)
    add_kernel(s, np.zeros((2, 2, 3), np.uint8), np.empty_like(s))
