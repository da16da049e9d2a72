"""Compile or load every Numba kernel once before frame 0, so the cost shows as ``startup``."""
from __future__ import annotations

import numpy as np

_done = False


def warm_all() -> None:
    global _done
    if _done:
        return
    from keyer import _encode_kernels as EK
    from keyer.keying import warm as warm_keying

    warm_keying()
    tiny = np.zeros((2, 2, 4), np.uint8)
    EK.zero_transparent(tiny, np.empty_like(tiny))
    EK.flatten(tiny, np.zeros((2, 2, 3), np.uint8), np.empty((2, 2, 3), np.uint8))
    try:
        import effects

        warm = getattr(effects, "warm_all", None)
        if warm:
            warm()
    except ImportError:
        pass
    _done = True
