"""Sticker effects: each a small named unit in its own module, registered when that module is
imported. ``effects.base.MODULES`` lists them by name; a chain imports only the effects it names,
``describe()`` and ``warm_all()`` import them all."""
from effects.base import ALL, MODULES, REGISTRY, Geometry, build, describe, load_all, parse_chain
from effects.posterize import posterize_time

__all__ = ["ALL", "MODULES", "REGISTRY", "Geometry", "build", "describe", "load_all",
           "parse_chain", "posterize_time", "warm_all"]


def warm_all() -> None:
    """Compile or load every effect kernel once (before frame 0)."""
    from effects import (_composite, add, alpha_bevel, displacement, multiply, outline,
                         surface_bevel)

    _composite.warm()
    for module in (add, alpha_bevel, displacement, multiply, outline, surface_bevel):
        module.warm()
