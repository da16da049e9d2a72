"""Sticker effects: each a small named unit, registered explicitly by importing its module."""
from effects import (  # noqa: F401  (each import registers one effect)
    add,
    alpha_bevel,
    displacement,
    drop_shadow,
    multiply,
    outline,
    surface_bevel,
)
from effects.base import ALL, REGISTRY, Geometry, build, describe, parse_chain
from effects.posterize import posterize_time

__all__ = ["ALL", "REGISTRY", "Geometry", "build", "describe", "parse_chain", "posterize_time",
           "warm_all"]


def warm_all() -> None:
    """Compile or load every effect kernel once (before frame 0)."""
    from effects import _composite

    _composite.warm()
    for module in (add, alpha_bevel, displacement, multiply, outline, surface_bevel):
        module.warm()
