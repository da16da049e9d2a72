"""Effect specs: each parameter declared once, everything else derived from it.

An effect is a frozen, keyword-only dataclass registered under its command-line name by the
module :data:`MODULES` names for it; that module is imported when a chain first names the effect,
so a job loads only the effects it runs. Its fields are declared with ``keyer.params.param``,
which feeds the ``name=k=v:k=v`` parser, range checks, ``keyer effects``, ``--config`` keys and
the README tables. ``bind(geometry)`` validates against the frame size, allocates every buffer, loads and
resizes textures once, and returns a :class:`FrameOp`; steady-state frames then allocate
nothing. A FrameOp may name in ``scratch_arrays`` the arrays it writes before it reads them in
every call (nothing kept from one frame to the next): in a chain, ``keyer.stages.EffectsStage``
makes them views of one buffer the chain's effects share. An effect's module ``warm()`` loads
the kernels it runs, those of ``_composite`` included.
"""
from __future__ import annotations

import importlib
import inspect
from dataclasses import dataclass
from typing import Any, Callable, Protocol

import numpy as np

from keyer.errors import UsageProblem
from keyer.frame import FrameOp, Geometry  # noqa: F401 (the contract effects implement)
from keyer.params import Param, coerce, param, params_of, suggest  # noqa: F401 (effects use param)


REGISTRY: dict[str, type] = {}

# Every effect by command-line name, and the module whose import registers it. Importing all of
# them costs ~25 ms (~40 ms without byte-code), which a job running one effect need not pay;
# `keyer effects` imports them all.
MODULES = {
    "displacement": "keyer.effects.displacement",
    "multiply": "keyer.effects.multiply",
    "add": "keyer.effects.add",
    "surface-bevel": "keyer.effects.surface_bevel",
    "alpha-bevel": "keyer.effects.alpha_bevel",
    "drop-shadow": "keyer.effects.drop_shadow",
    "outline": "keyer.effects.outline",
}

# `--effects all`: the six sticker effects in their natural order.
ALL = ("displacement", "multiply", "add", "surface-bevel", "alpha-bevel", "drop-shadow")


def register(name: str) -> Callable[[type], type]:
    """Class decorator: file the effect under its command-line name."""

    def deco(cls: type) -> type:
        cls.name = name
        REGISTRY[name] = cls
        return cls

    return deco


def effect_class(name: str) -> type | None:
    """The effect class registered as ``name``, importing its module first if need be."""
    if name not in REGISTRY and name in MODULES:
        importlib.import_module(MODULES[name])
    return REGISTRY.get(name)


def load_all() -> None:
    """Import every effect module in :data:`MODULES` (each import registers one effect)."""
    for module in MODULES.values():
        importlib.import_module(module)


def _names() -> list[str]:
    return sorted(set(MODULES) | set(REGISTRY))


def build(name: str, values: dict[str, Any] | None = None) -> Any:
    """Make an effect spec from its name and raw values, checking every name and range."""
    cls = effect_class(name)
    if cls is None:
        raise UsageProblem(f"unknown effect '{name}'" + suggest(name, _names()))
    known = params_of(cls)
    kwargs = {}
    for key, raw in (values or {}).items():
        key = str(key).replace("_", "-")
        if key not in known:
            raise UsageProblem(f"{name}: unknown parameter '{key}'" + suggest(key, list(known)))
        f, p = known[key]
        kwargs[f.name] = coerce(f"{name}: {key}", f, p, raw)
    try:
        return cls(**kwargs)
    except UsageProblem:
        raise
    except (TypeError, ValueError) as exc:
        raise UsageProblem(f"{name}: {exc}") from None


def parse_chain(text: str) -> list[Any]:
    """Parse FFmpeg filter syntax: ``name=k=v:k=v,name2,...``; ``all`` = the sticker chain.

    As in FFmpeg, values without ``key=`` are taken in the order the parameters are declared.
    """
    text = text.strip()
    if not text:
        return []
    if text == "all":
        return [build(n) for n in ALL]
    chain = []
    for part in _split(text, ","):
        part = part.strip()
        if not part:
            raise UsageProblem(f"--effects: empty effect in '{text}'")
        name, _, args = part.partition("=")
        name = name.strip()
        values: dict[str, Any] = {}
        if args:
            cls = effect_class(name)
            positional = list(params_of(cls)) if cls else []
            for i, item in enumerate(_split(args, ":")):
                key, eq, value = item.partition("=")
                if not eq:
                    if i >= len(positional):
                        raise UsageProblem(f"{name}: '{item}' needs the form key=value")
                    key, value = positional[i], item
                values[key.strip()] = _unquote(value.strip())
        chain.append(build(name, values))
    return chain


def _split(text: str, sep: str) -> list[str]:
    """Split on ``sep`` outside single quotes and not escaped with a backslash."""
    parts, cur, quoted, escaped = [], [], False, False
    for ch in text:
        if escaped:
            cur.append(ch)
            escaped = False
        elif ch == "\\":
            escaped = True
        elif ch == "'":
            quoted = not quoted
            cur.append(ch)
        elif ch == sep and not quoted:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    parts.append("".join(cur))
    return parts


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] == "'":
        return value[1:-1]
    return value


def summary(cls: type) -> str:
    """An effect's summary: the first paragraph of its docstring on one line, whole sentences
    however many lines the docstring wraps them over (the Notes that follow are left out), with
    reST's double backquotes made Markdown's single ones."""
    doc = inspect.cleandoc(cls.__doc__ or "")
    return " ".join(doc.split("\n\n", 1)[0].split()).replace("``", "`")


def describe() -> list[dict[str, Any]]:
    """Every effect with its summary, parameters, ranges, defaults and help (for ``keyer
    effects`` and the README's effect table)."""
    load_all()
    rows = []
    order = sorted(REGISTRY, key=lambda n: (ALL.index(n) if n in ALL else len(ALL), n))
    for name in order:
        cls = REGISTRY[name]
        params = [{"name": key, "default": p.default, "range": p.describe_range(), "help": p.help}
                  for key, (_, p) in params_of(cls).items()]
        rows.append({"name": name, "summary": summary(cls), "params": params})
    return rows
