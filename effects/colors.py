"""The effects' colour parser: ``keyer.colour.parse_color`` (``#RRGGBB``, ``RRGGBB``,
``0xRRGGBB``, ``#RRGGBBAA`` or a name), the one parser of the whole project, re-exported here."""
from __future__ import annotations

from keyer.colour import NAMES, parse_color

__all__ = ["NAMES", "parse_color"]
