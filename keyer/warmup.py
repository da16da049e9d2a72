"""Compile or load the job's Numba kernels once before frame 0, so the cost shows as ``startup``.

Only the kernels the job will run are loaded: each compiled kernel costs memory (LLVM code),
about 50 MB for keying and 70 MB for all the effects together.
"""
from __future__ import annotations

import sys
from typing import Iterable

import numpy as np

_warmed: set[str] = set()


def warm(effect_specs: Iterable = ()) -> None:
    from keyer import _encode_kernels as EK
    from keyer.keying import warm as warm_keying

    if "keyer" not in _warmed:
        warm_keying()
        tiny = np.zeros((2, 2, 4), np.uint8)
        EK.zero_transparent(tiny, np.empty_like(tiny))
        EK.flatten(tiny, np.zeros((2, 2, 3), np.uint8), np.empty((2, 2, 3), np.uint8))
        _warmed.add("keyer")
    for spec in effect_specs:
        module_name = type(spec).__module__
        if module_name in _warmed:
            continue
        module = sys.modules[module_name]
        for name in ("warm", "warm_planes"):
            fn = getattr(module, name, None)
            if fn:
                fn()
        for dep in getattr(module, "KERNEL_DEPS", ()):
            for name in ("warm", "warm_planes"):
                fn = getattr(dep, name, None)
                if fn:
                    fn()
        _warmed.add(module_name)
