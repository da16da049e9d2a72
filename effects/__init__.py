"""Sticker effects: each a small named unit in its own module, registered when that module is
imported. ``keyer.effects.base.MODULES`` lists them by name; a chain imports only the effects it names,
``describe()`` imports them all."""
from keyer.effects.base import ALL, MODULES, REGISTRY, Geometry, build, describe, load_all, parse_chain

__all__ = ["ALL", "MODULES", "REGISTRY", "Geometry", "build", "describe", "load_all",
           "parse_chain"]
