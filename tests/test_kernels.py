"""The kernel modules' house rules, and the colour standards they are given.

Numba's disk cache watches only the file that defines a kernel, so a helper both key paths need
is written out in each module that uses it: these copies must stay the same. Colour constants
come from ``keyer.colour`` alone.
"""
import inspect
import re

import numba
import pytest

from keyer import colour
from keyer.errors import UsageProblem
from keyer.keying import parse_key_color
from keyer.kernels import encode, guided, planar, rgba, screen

KEY_MODULES = (rgba, planar, guided, screen)   # the key's: they share its colour-difference math
MODULES = (*KEY_MODULES, encode)


def _dispatchers(module):
    return {name: f for name, f in vars(module).items()
            if isinstance(f, numba.core.registry.CPUDispatcher) and f.__module__ == module.__name__}


def test_helpers_written_out_in_several_modules_are_the_same():
    copies = {}
    for module in KEY_MODULES:
        for name, f in _dispatchers(module).items():
            copies.setdefault(name, []).append((module.__name__, inspect.getsource(f.py_func)))
    shared = {name: found for name, found in copies.items() if len(found) > 1}
    assert {"_split", "_difference", "_despill", "_join", "_clear_stats_row"} <= set(shared)
    for name, found in shared.items():
        first_module, first = found[0]
        for module, source in found[1:]:
            assert source == first, f"{name}: {module} differs from {first_module}"


def test_no_kernel_takes_more_than_15_arguments():
    for module in MODULES:
        for name, f in _dispatchers(module).items():
            n = len(inspect.signature(f.py_func).parameters)
            assert n <= 15, f"{module.__name__}.{name} takes {n} arguments"


def test_bt709_constants():
    assert colour.LUMA709 == (0.2126, 0.7152, 0.0722)
    assert colour.BT709 == colour.MATRICES[1] == (0.2126, 0.0722)
    assert colour.BT709_LIMITED == (0.2126, 0.0722, 16.0, 219.0, 128.0, 224.0)
    assert colour.matrix_for(2, 1080) == colour.BT709 and colour.matrix_for(2, 480) == colour.BT601


# The two hex syntaxes as they were spelled before they shared one parser.
KEY_HEX = re.compile(r"^#?([0-9a-fA-F]{6})$")
COLOUR_HEX = re.compile(r"^(?:#|0x)?([0-9a-fA-F]{6})([0-9a-fA-F]{2})?$")
SAMPLES = ["#00b140", "00B140", "#00B140FF", "00b14080", "0x00b140", "0X00B140", "0x00b140ff",
           "#0x00b140", "#00b14", "#00b1400", "#00b140f", "00b140ff0", " #00b140 ", "#00b140\n",
           "##00b140", "#g0b140", "", "#", "0x", "red", "auto", "#00 b140", "0x00b14"]


@pytest.mark.parametrize("text", SAMPLES)
def test_hex_parser_accepts_what_each_parser_did(text):
    def old(pattern):
        m = pattern.match(text.strip().lower())
        return None if m is None else tuple((int(m.group(1), 16) >> s) & 255 for s in (16, 8, 0))
    assert colour.parse_hex(text, strict=True) == old(KEY_HEX)
    assert colour.parse_hex(text) == old(COLOUR_HEX)


def test_both_parsers_keep_their_messages():
    with pytest.raises(UsageProblem, match=r"^'0x00b14' is not a colour \(use #RRGGBB or a name"):
        colour.parse_color("0x00b14")
    with pytest.raises(UsageProblem, match=r"^--key '0x00b140': use auto, green, blue or #RRGGBB$"):
        parse_key_color("0x00b140")
    with pytest.raises(UsageProblem, match=r"^--key '#808080' is too grey to key on"):
        parse_key_color("#808080")
    assert colour.parse_color("0x00b140ff") == (0, 177, 64)
    assert parse_key_color(" #00B140 ") == ("rgb", (0, 177, 64))
