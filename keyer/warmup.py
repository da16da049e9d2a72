"""Compile or load the job's Numba kernels once before frame 0, so the cost shows as ``startup``.

Only the kernels the job will run are loaded: each compiled kernel costs memory (LLVM code),
about 50 MB for keying and 70 MB for all the effects together.
"""
from __future__ import annotations

import sys
from typing import Iterable

import numpy as np

_warmed: set[str] = set()


def warm(effect_specs: Iterable = (), output_format=None, key_path: str = "rgba") -> None:
    """Load the kernels one job runs: the key's (``key_path`` = ``rgba`` for ``KeyStage``,
    ``planar`` / ``planar-rgba`` for ``PlanarKeyStage`` writing planes / RGBA), the encoder
    kernel variant ``output_format`` needs (an ``keyer.encode.OutputFormat``; None: all of
    them; none when the key writes the encoder's planes, but for a background to make) and the
    kernels of ``effect_specs``."""
    from keyer import _encode_kernels as EK
    from keyer.encode import FORMATS, PLANAR
    from keyer.keying import warm as warm_keying

    planar = key_path != "rgba"
    if f"keyer:{planar}" not in _warmed:
        warm_keying(planar)
        _warmed.add(f"keyer:{planar}")
    formats = [output_format] if output_format is not None else list(FORMATS.values())
    if key_path == "planar":
        formats = [f for f in formats if f.flatten]
    tiny = np.zeros((2, 2, 4), np.uint8)
    for fmt in formats:
        key = f"encode:{fmt.name}"
        if key in _warmed:
            continue
        if fmt.codec is None:
            EK.zero_transparent(tiny, np.empty_like(tiny))
        else:
            sub, bits = PLANAR[fmt.pix_fmt]
            dtype = np.uint8 if bits == 8 else np.dtype("<u2")
            planes = [np.zeros((2, 2), dtype) for _ in range(4)]
            if (sub, bits) == (1, 8):
                EK.rgba_to_yuv420(tiny, np.zeros((2, 2, 3), np.uint8), fmt.flatten, 0.2126,
                                  0.0722, *planes)
            else:
                EK.rgba_to_yuv(tiny, np.zeros((2, 2, 3), np.uint8), fmt.flatten, 0.2126, 0.0722,
                               bits, sub, *planes)
        _warmed.add(key)
    for spec in effect_specs:
        module_name = type(spec).__module__
        if module_name in _warmed:
            continue
        module = sys.modules[module_name]
        for owner in (module, *getattr(module, "KERNEL_DEPS", ())):
            fn = getattr(owner, "warm", None)
            if fn:
                fn()
        _warmed.add(module_name)
