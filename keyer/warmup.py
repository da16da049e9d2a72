"""Compile or load the job's Numba kernels once before frame 0, so the cost shows as ``startup``.

Only the kernels the job will run are loaded: each compiled kernel costs memory (LLVM code),
about 50 MB for keying and 70 MB for all the effects together.
"""
from __future__ import annotations

import sys
from typing import Iterable

import numpy as np

_warmed: set[str] = set()


def output_rows(fmt, size: tuple[int, int], rotation: int = 0) -> tuple[bool, bool, bool | None]:
    """Whether the rows of the planes the planar key writes for ``fmt`` (an 8-bit 4:2:0
    ``keyer.formats.OutputFormat``) at ``size`` are padded: (Y', Cb and Cr, A or None without
    alpha). Unrotated it writes the encoder's frames themselves; rotated, scratch planes."""
    import av

    if rotation % 360:
        return False, False, (False if fmt.alpha else None)
    vf = av.VideoFrame(size[0], size[1], fmt.pix_fmt)
    luma, chroma = (p.line_size != p.width for p in vf.planes[:2])
    return luma, chroma, (vf.planes[3].line_size != vf.planes[3].width if fmt.alpha else None)


def warm(effect_specs: Iterable = (), output_format=None, key_path: str = "rgba",
         size: tuple[int, int] = (2, 2), source_padded: bool = False, rotation: int = 0) -> None:
    """Load the kernels one job runs: the key's (``key_path`` = ``rgba`` for ``KeyStage``,
    ``planar`` / ``planar-rgba`` for ``PlanarKeyStage`` writing planes / RGBA), for decoded
    planes whose rows are padded or not (``source_padded``); the encoder kernel variant
    ``output_format`` needs (an ``keyer.encode.OutputFormat``; None: all of them; none when the
    key writes the encoder's planes, but for a background to make), run at the job's ``size``
    (width, height) and ``rotation`` so that frame planes have the layouts the job's will; and
    the kernels of ``effect_specs``."""
    from keyer.kernels import encode as EK
    from keyer.encode import FORMATS, NO_PLANES, fast_yuv420, rgba_to_frame
    from keyer.keying import warm as warm_keying

    formats = [output_format] if output_format is not None else list(FORMATS.values())
    for fmt in (formats if key_path == "planar" else [None]):
        outputs = None
        if fmt is not None and fmt.codec is not None and fmt.pix_fmt in ("yuva420p", "yuv420p"):
            outputs = output_rows(fmt, size, rotation)
        key = f"keyer:{key_path}:{source_padded}:{outputs}:{fmt is not None and fmt.flatten}"
        if key not in _warmed:
            warm_keying(key_path != "rgba", source_padded, outputs, fmt is not None and fmt.flatten)
            _warmed.add(key)
    if key_path == "planar":
        formats = [f for f in formats if f.flatten]
    for fmt in formats:
        w, h = fmt.coded_size(*size)   # what the sink converts: an odd size grown to even
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


# Sizes ``warm_all`` runs the frame-size-dependent kernels at. The encoder's frames are views of
# rows padded to FFmpeg's alignment, so whether a plane is C-contiguous (one Numba signature) or
# strided (another) depends on the width: these cover widths whose luma and chroma rows are both
# unpadded (1280), luma unpadded but not chroma (48), neither (100), and an odd size (which
# takes the general conversion kernel). Decoded planes are covered both ways (``warm_all``).
WARM_SIZES = ((1280, 720), (48, 32), (100, 76), (99, 75))


def warm_all() -> int:
    """Compile or load every kernel keyer has (both key paths, every output format at each of
    ``WARM_SIZES``, every effect), so that jobs after it compile nothing: for image builds and
    CI (``keyer warm``). Returns how many kernel signatures had to be compiled."""
    from keyer.effects.base import REGISTRY, load_all

    load_all()
    specs = [REGISTRY[name]() for name in sorted(REGISTRY)]
    for key_path in ("rgba", "planar-rgba", "planar"):
        for size in WARM_SIZES:
            for padded in (False, True):
                for rotation in ((0, 90) if key_path == "planar" else (0,)):
                    warm(specs, None, key_path, size, padded, rotation)
    return compiled_count()
