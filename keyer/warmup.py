"""Compile or load the job's Numba kernels once before frame 0, so the cost shows as ``startup``.

Only the kernels the job will run are loaded: each compiled kernel costs memory (LLVM code),
about 50 MB for keying and 70 MB for all the effects together.
"""
from __future__ import annotations

import sys
from typing import Iterable

import numpy as np

_warmed: set[str] = set()


def warm(effect_specs: Iterable = (), output_format=None, key_path: str = "rgba",
         size: tuple[int, int] = (2, 2)) -> None:
    """Load the kernels one job runs: the key's (``key_path`` = ``rgba`` for ``KeyStage``,
    ``planar`` / ``planar-rgba`` for ``PlanarKeyStage`` writing planes / RGBA), the encoder
    kernel variant ``output_format`` needs (an ``keyer.encode.OutputFormat``; None: all of
    them; none when the key writes the encoder's planes, but for a background to make), run at
    the job's ``size`` (width, height) so that frame planes have the layouts the job's will,
    and the kernels of ``effect_specs``."""
    from keyer.kernels import encode as EK
    from keyer.encode import FORMATS, NO_PLANES, fast_yuv420, rgba_to_frame
    from keyer.keying import warm as warm_keying

    planar = key_path != "rgba"
    if f"keyer:{planar}" not in _warmed:
        warm_keying(planar)
        _warmed.add(f"keyer:{planar}")
    formats = [output_format] if output_format is not None else list(FORMATS.values())
    if key_path == "planar":
        formats = [f for f in formats if f.flatten]
    w, h = size
    for fmt in formats:
        key = f"encode:{fmt.name}:{w}x{h}"
        if key in _warmed:
            continue
        rgba = np.zeros((h, w, 4), np.uint8)
        if fmt.codec is None:
            EK.zero_transparent(rgba, np.empty_like(rgba))
        else:   # the sink's own conversion, at the job's size: the same array layouts
            background = np.zeros((h, w, 3) if fmt.flatten else (1, 1, 3), np.uint8)
            planes = NO_PLANES   # zero planes of the real shapes: none made for the warm-up
            if fmt.flatten and fast_yuv420(fmt, w, h):
                planes = (np.zeros((h, w), np.uint8),) + (np.zeros((h // 2, w // 2), np.uint8),) * 2
            rgba_to_frame(rgba, fmt, background, planes)
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


def compiled_count() -> int:
    """Kernel signatures compiled in this process so far, as opposed to loaded from Numba's
    disk cache: every cache miss of a keyer or effects kernel."""
    from numba.core.dispatcher import Dispatcher

    n = 0
    for name, module in list(sys.modules.items()):
        if module is None or not name.startswith("keyer."):
            continue
        for obj in list(vars(module).values()):
            if isinstance(obj, Dispatcher):
                n += sum(obj.stats.cache_misses.values())
    return n


# Sizes ``warm_all`` runs the frame-size-dependent kernels at. Decoded and encoder planes are
# views of rows padded to FFmpeg's alignment, so whether a plane is C-contiguous (one Numba
# signature) or strided (another) depends on the width: these cover even widths whose luma and
# chroma rows are both aligned (1280, 1920), luma aligned but not chroma (64), neither (100),
# and an odd size (which takes the general conversion kernel).
WARM_SIZES = ((1280, 720), (1920, 1080), (64, 48), (100, 76), (99, 75))


def warm_all() -> int:
    """Compile or load every kernel keyer has (both key paths, every output format at each of
    ``WARM_SIZES``, every effect), so that jobs after it compile nothing: for image builds and
    CI (``keyer warm``). Returns how many kernel signatures had to be compiled."""
    from keyer.effects.base import REGISTRY, load_all

    load_all()
    specs = [REGISTRY[name]() for name in sorted(REGISTRY)]
    for key_path in ("rgba", "planar-rgba", "planar"):
        for size in WARM_SIZES:
            warm(specs, None, key_path, size)
    return compiled_count()
