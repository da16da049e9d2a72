"""One colour parser for the whole project: ``#RRGGBB``, ``RRGGBB``, ``#RRGGBBAA`` or a name."""
from __future__ import annotations

import re

from keyer.errors import UsageProblem

NAMES = {
    "white": (255, 255, 255), "black": (0, 0, 0), "red": (255, 0, 0), "green": (0, 255, 0),
    "blue": (0, 0, 255), "yellow": (255, 255, 0), "cyan": (0, 255, 255),
    "magenta": (255, 0, 255), "grey": (128, 128, 128), "gray": (128, 128, 128),
    "orange": (255, 165, 0), "pink": (255, 192, 203), "purple": (128, 0, 128),
}
_HEX = re.compile(r"^(?:#|0x)?([0-9a-fA-F]{6})([0-9a-fA-F]{2})?$")


def parse_color(text: str) -> tuple[int, int, int]:
    """``"#ff8000"`` -> ``(255, 128, 0)``; names as in CSS for the common ones.

    >>> parse_color("white"), parse_color("#00B140")
    ((255, 255, 255), (0, 177, 64))
    """
    t = str(text).strip().lower()
    if t in NAMES:
        return NAMES[t]
    m = _HEX.match(t)
    if not m:
        raise UsageProblem(f"{text!r} is not a colour (use #RRGGBB or a name like white)")
    v = int(m.group(1), 16)
    return ((v >> 16) & 255, (v >> 8) & 255, v & 255)
