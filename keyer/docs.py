"""The README's tables, made from the declarations: ``keyer run``'s options (``keyer.settings``)
and the effects' parameters (``effects.describe()``, which ``keyer effects`` prints too).

``python -m keyer.docs``                     prints both tables (Markdown);
``python -m keyer.docs --write README.md``   makes them anew between their markers;
``python -m keyer.docs --check README.md``   exits 1 when the README's tables are stale (a test runs it).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from keyer.params import kind_of, params_of
from keyer.settings import SECTIONS

SECTION_TITLES = {"key": "the key", "encode": "the encoder", "job": "the job"}


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|")


def options_table() -> str:
    """``keyer run``'s declared options: option, default, range, meaning."""
    lines = ["| option | default | range | meaning |", "|---|---|---|---|"]
    for section, cls in SECTIONS.items():
        lines.append(f"| **{SECTION_TITLES[section]}** | | | |")
        for name, (f, p) in params_of(cls).items():
            option = (f"`{p.short}`, " if p.short else "") + f"`{p.option or '--' + name}`"
            default = "" if kind_of(f) is bool or p.default in (None, ()) else f"`{p.default}`"
            help_ = p.help + (f" Env: `{p.envvar}`." if p.envvar else "")
            lines.append(f"| {option} | {default} | {_cell(p.describe_range())} | {_cell(help_)} |")
    return "\n".join(lines)


def effects_table() -> str:
    """The effects: one row each, its parameters one per line in a cell (``name=default``,
    range, meaning), as ``keyer effects`` lists them."""
    from keyer.effects import describe

    lines = ["| effect | what it does | parameters: `name=default` range: meaning |", "|---|---|---|"]
    for row in describe():
        params = "<br>".join(
            f"`{p['name']}={p['default']}`" + (f" {p['range']}" if p["range"] else "") + f": {p['help']}"
            for p in row["params"])
        lines.append(f"| `{row['name']}` | {_cell(row['summary'])} | {_cell(params)} |")
    return "\n".join(lines)


TABLES = {"options": options_table, "effects": effects_table}


def markers(name: str) -> tuple[str, str]:
    return (f"<!-- {name} table: made by python -m keyer.docs from the declarations -->",
            f"<!-- end of {name} table -->")


def replaced(text: str) -> str:
    """``text`` with every table between its markers made anew."""
    for name, make in TABLES.items():
        begin, end = markers(name)
        head, sep, rest = text.partition(begin)
        if not sep or end not in rest:
            raise SystemExit(f"keyer.docs: the {name} table's markers are missing:\n{begin}\n{end}")
        text = f"{head}{begin}\n{make()}\n{end}{rest.partition(end)[2]}"
    return text


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m keyer.docs", description=__doc__.splitlines()[0])
    group = ap.add_mutually_exclusive_group()
    group.add_argument("--write", type=Path, metavar="README", help="make the tables anew in this file")
    group.add_argument("--check", type=Path, metavar="README", help="exit 1 if its tables are stale")
    args = ap.parse_args(argv)
    if args.write:
        args.write.write_text(replaced(args.write.read_text()))
    elif args.check:
        text = args.check.read_text()
        if replaced(text) != text:
            print(f"{args.check}: the tables are stale; run python -m keyer.docs --write {args.check}",
                  file=sys.stderr)
            return 1
    else:
        print("\n\n".join(make() for make in TABLES.values()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
