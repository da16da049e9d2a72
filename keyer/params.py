"""A setting declared once: default, range or choices, unit, help, and how it is spelled.

The job's settings (``keyer.settings``) and every effect's parameters (``keyer.effects``) are
frozen dataclasses whose fields are declared with :func:`param`. Everything else derives from the
declaration: the range checks (:func:`validate`, :func:`coerce`), the ``name=k=v`` effect parser,
the command line's options (``keyer.cli``), ``--config`` keys, ``keyer effects`` and the README's
tables (``keyer.docs``).
"""
from __future__ import annotations

import dataclasses
import difflib
from dataclasses import dataclass, field
from typing import Any, Callable

from keyer.errors import UsageProblem


@dataclass(frozen=True, slots=True)
class Param:
    """What the command line, the config file and the docs know of one setting."""

    default: Any
    lo: float | None = None
    hi: float | None = None
    choices: tuple[str, ...] | None = None
    unit: str = ""
    help: str = ""
    # How the command line spells it (job settings only; effects take ``name=k=v``):
    option: str | None = None     # the long option when not ``--<field-name>``
    short: str | None = None      # a short alias (``-y``)
    negate: bool = False          # a flag that sets the field to False (``--global-key``)
    parse: Callable[[Any], Any] | None = None   # text -> value; raises UsageProblem/ValueError
    metavar: str | None = None
    envvar: str | None = None

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
          choices: tuple[str, ...] | None = None, unit: str = "", help: str = "",
          **spelling: Any) -> Any:
    """Declare a setting: a dataclass field whose metadata is its :class:`Param`."""
    meta = Param(default, lo, hi, tuple(choices) if choices else None, unit, help, **spelling)
    return field(default=default, metadata={"param": meta})


def params_of(cls: type) -> dict[str, tuple[dataclasses.Field, Param]]:
    """Command-line name (``-`` for ``_``) -> (field, Param), in declaration order."""
    out = {}
    for f in dataclasses.fields(cls):
        meta = f.metadata.get("param")
        if meta is not None:
            out[f.name.replace("_", "-")] = (f, meta)
    return out


def suggest(word: str, options: list[str]) -> str:
    """``; did you mean 'x'?`` for the closest of ``options``, else the list of them."""
    close = difflib.get_close_matches(word, options, n=1, cutoff=0.5)
    return f"; did you mean '{close[0]}'?" if close else f" (known: {', '.join(sorted(options))})"


def kind_of(f: dataclasses.Field) -> type:
    """The value type a field holds: bool, int, float or str (others count as str)."""
    text = f.type if isinstance(f.type, str) else getattr(f.type, "__name__", "str")
    for name, kind in (("bool", bool), ("int", int), ("float", float)):
        if text.split("|")[0].strip() == name:
            return kind
    return str


def check(where: str, p: Param, value: Any) -> None:
    """Raise UsageProblem naming ``where`` (``--similarity``, ``drop-shadow: softness``) when
    ``value`` is not one of the choices or outside the range."""
    if value is None or isinstance(value, bool):
        return
    if p.choices and value not in p.choices:
        raise UsageProblem(f"{where}={value} is not one of {'|'.join(p.choices)}"
                           + suggest(str(value), list(p.choices)))
    if isinstance(value, (int, float)) or hasattr(value, "denominator"):
        if (p.lo is not None and value < p.lo) or (p.hi is not None and value > p.hi):
            raise UsageProblem(f"{where}={float(value):g} is outside {p.describe_range()}")


def validate(obj: Any, prefix: str = "--") -> None:
    """Check every declared field of ``obj`` against its declaration (in ``__post_init__``)."""
    for name, (f, p) in params_of(type(obj)).items():
        check(p.option or f"{prefix}{name}", p, getattr(obj, f.name))


def coerce(where: str, f: dataclasses.Field, p: Param, raw: Any) -> Any:
    """Convert text (or a TOML value) to the field's type and check it; errors name ``where``."""
    kind = kind_of(f)
    try:
        if p.parse is not None:
            value = p.parse(raw)
        elif kind is bool:
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
    except (TypeError, ValueError) as exc:
        if isinstance(exc, UsageProblem):
            raise
        raise UsageProblem(f"{where}={raw!r} is not a valid {kind.__name__}") from None
    check(where, p, value)
    return value
