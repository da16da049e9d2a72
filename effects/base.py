"""Effect specs: each parameter declared once, everything else derived from it.

An effect is a frozen, keyword-only dataclass registered under its command-line name by the
module :data:`MODULES` names for it; that module is imported when a chain first names the effect,
so a job loads only the effects it runs. Its fields are declared with :func:`param`, which feeds
the ``name=k=v:k=v`` parser, range checks, ``keyer effects``, ``--config`` keys and the README
tables. ``bind(geometry)`` validates against the frame size, allocates every buffer, loads and
resizes textures once, and returns a :class:`FrameOp`; steady-state frames then allocate
nothing.
"""
from __future__ import annotations

import dataclasses
import difflib
import importlib
import inspect
from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar, Protocol

import numpy as np

from keyer.errors import UsageProblem


@dataclass(frozen=True, slots=True)
class Param:
    """What the command line, the config file and the docs know of one effect parameter."""

    default: Any
    lo: float | None = None
    hi: float | None = None
    choices: tuple[str, ...] | None = None
    unit: str = ""
    help: str = ""

    def describe_range(self) -> str:
        if self.choices:
            return "|".join(self.choices)
        if self.lo is not None or self.hi is not None:
            lo = "" if self.lo is None else _number(self.lo)
            hi = "" if self.hi is None else _number(self.hi)
            return f"{lo}..{hi}" + (f" {self.unit}" if self.unit else "")
        return self.unit


def _number(v: float) -> str:
    """A range bound as written: ``2147483647``, not ``2.14748e+09``; ``0.5`` as ``0.5``."""
    return str(int(v)) if float(v).is_integer() else f"{v:g}"


def param(default: Any, *, lo: float | None = None, hi: float | None = None,
          choices: tuple[str, ...] | None = None, unit: str = "", help: str = "") -> Any:
    """Declare an effect parameter (a dataclass field with its metadata)."""
    meta = Param(default, lo, hi, tuple(choices) if choices else None, unit, help)
    return field(default=default, metadata={"param": meta})


@dataclass(frozen=True, slots=True)
class Geometry:
    """What an effect is bound to: the canvas it will see every frame."""

    width: int
    height: int
    fps: float = 30.0


class FrameOp(Protocol):
    """A bound effect: ``op(src, out, t)`` writes ``out`` from ``src`` (both (H, W, 4) uint8
    straight-alpha RGBA, distinct arrays) for the frame at ``t`` seconds; ``close()`` frees.
    In a chain, ``boxes`` (an ``effects._composite.Boxes``) says what is known of ``src`` and
    ``out`` and is left describing the output (see ``keyer.stages.EffectsStage``); without
    it the effect works it all out and writes the whole of ``out``."""

    def __call__(self, src: np.ndarray, out: np.ndarray, t: float, boxes: Any = None) -> None: ...

    def close(self) -> None: ...


class Effect(Protocol):
    name: ClassVar[str]

    def bind(self, geometry: Geometry) -> FrameOp: ...


REGISTRY: dict[str, type] = {}

# Every effect by command-line name, and the module whose import registers it. Importing all of
# them costs ~25 ms (~40 ms without byte-code), which a job running one effect, or only
# posterize-time, need not pay; `keyer effects` imports them all.
MODULES = {
    "displacement": "effects.displacement",
    "multiply": "effects.multiply",
    "add": "effects.add",
    "surface-bevel": "effects.surface_bevel",
    "alpha-bevel": "effects.alpha_bevel",
    "drop-shadow": "effects.drop_shadow",
    "outline": "effects.outline",
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


def params_of(cls: type) -> dict[str, tuple[dataclasses.Field, Param]]:
    """Command-line name (``-`` for ``_``) -> (field, Param) for an effect class."""
    out = {}
    for f in dataclasses.fields(cls):
        meta = f.metadata.get("param")
        if meta is not None:
            out[f.name.replace("_", "-")] = (f, meta)
    return out


def _suggest(word: str, options: list[str]) -> str:
    close = difflib.get_close_matches(word, options, n=1, cutoff=0.5)
    return f"; did you mean '{close[0]}'?" if close else f" (known: {', '.join(sorted(options))})"


def _field_type(f: dataclasses.Field) -> type:
    t = f.type if isinstance(f.type, type) else {"float": float, "int": int, "str": str,
                                                   "bool": bool}.get(str(f.type), str)
    return t


def coerce(effect: str, key: str, f: dataclasses.Field, p: Param, raw: Any) -> Any:
    """Convert and range-check one value; errors name the effect, parameter and range."""
    kind = _field_type(f)
    try:
        if kind is bool:
            if isinstance(raw, bool):
                value = raw
            elif str(raw).lower() in ("1", "true", "yes", "on"):
                value = True
            elif str(raw).lower() in ("0", "false", "no", "off"):
                value = False
            else:
                raise ValueError
        elif kind is int:
            value = int(raw) if not isinstance(raw, float) or raw.is_integer() else int("x")
        elif kind is float:
            value = float(raw)
            if value != value:  # NaN
                raise ValueError
        else:
            value = str(raw)
    except (TypeError, ValueError):
        raise UsageProblem(f"{effect}: {key}={raw!r} is not a valid {kind.__name__}") from None
    if p.choices and value not in p.choices:
        raise UsageProblem(f"{effect}: {key}={value} is not one of {'|'.join(p.choices)}"
                           + _suggest(str(value), list(p.choices)))
    if kind in (int, float):
        if (p.lo is not None and value < p.lo) or (p.hi is not None and value > p.hi):
            raise UsageProblem(f"{effect}: {key}={value:g} is outside {p.describe_range()}")
    return value


def build(name: str, values: dict[str, Any] | None = None) -> Any:
    """Make an effect spec from its name and raw values, checking every name and range."""
    cls = effect_class(name)
    if cls is None:
        raise UsageProblem(f"unknown effect '{name}'" + _suggest(name, _names()))
    known = params_of(cls)
    kwargs = {}
    for key, raw in (values or {}).items():
        key = str(key).replace("_", "-")
        if key not in known:
            raise UsageProblem(f"{name}: unknown parameter '{key}'" + _suggest(key, list(known)))
        f, p = known[key]
        kwargs[f.name] = coerce(name, key, f, p, raw)
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
