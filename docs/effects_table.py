"""The README's effect table, made from the effects' own ``param()`` declarations.

``python docs/effects_table.py``                prints the table (Markdown);
``python docs/effects_table.py --write README.md``  replaces the table between its two markers;
``python docs/effects_table.py --check README.md``  exits 1 when the README's table is stale.

It renders ``effects.describe()``, the same rows ``keyer effects`` prints, so the README, the
command line and the parser share one source.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from effects import describe  # noqa: E402

BEGIN = "<!-- effects table: made by docs/effects_table.py from the param() declarations -->"
END = "<!-- end of effects table -->"


def table() -> str:
    """The effect table as Markdown: one row per effect, its parameters one per line in a cell
    (``name=default``, range, meaning), as ``keyer effects`` lists them."""
    def cell(text: str) -> str:
        return text.replace("|", "\\|")

    lines = ["| effect | what it does | parameters: `name=default` range: meaning |", "|---|---|---|"]
    for row in describe():
        params = "<br>".join(
            f"`{p['name']}={p['default']}`" + (f" {p['range']}" if p["range"] else "") + f": {p['help']}"
            for p in row["params"])
        lines.append(f"| `{row['name']}` | {cell(row['summary'])} | {cell(params)} |")
    return "\n".join(lines)


def replaced(text: str) -> str:
    """``text`` with the table between ``BEGIN`` and ``END`` made anew."""
    head, sep, rest = text.partition(BEGIN)
    if not sep or END not in rest:
        raise SystemExit(f"effects_table: the markers are missing:\n{BEGIN}\n{END}")
    return f"{head}{BEGIN}\n{table()}\n{END}{rest.partition(END)[2]}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    group = ap.add_mutually_exclusive_group()
    group.add_argument("--write", type=Path, metavar="README", help="update the table in this file")
    group.add_argument("--check", type=Path, metavar="README", help="exit 1 if its table is stale")
    args = ap.parse_args(argv)
    if args.write:
        args.write.write_text(replaced(args.write.read_text()))
    elif args.check:
        text = args.check.read_text()
        if replaced(text) != text:
            print(f"{args.check}: the effect table is stale; run python docs/effects_table.py "
                  f"--write {args.check}", file=sys.stderr)
            return 1
    else:
        print(table())
    return 0


if __name__ == "__main__":
    sys.exit(main())
