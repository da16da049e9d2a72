"""Per-user Numba cache directory, set before keyer's kernels are defined.

Numba caches next to the source file by default, which fails (silently recompiling every run) when
the package is installed read-only. We use ``$KEYER_CACHE_DIR``, else ``$XDG_CACHE_HOME/keyer``,
else ``~/.cache/keyer``; an explicit ``NUMBA_CACHE_DIR`` wins.

Numba reads ``NUMBA_CACHE_DIR`` when it is imported; a program that imported numba before keyer
has its configuration re-read here, since a kernel's cache place is fixed when it is defined.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path


def cache_dir() -> Path:
    explicit = os.environ.get("KEYER_CACHE_DIR")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "keyer"


if "NUMBA_CACHE_DIR" not in os.environ:
    # one folder per keyer version: a compiled kernel refers to its module by name, so a cache
    # made before a module moved (effects -> keyer.effects in 0.2) must not be loaded after it
    from keyer import __version__

    _dir = cache_dir() / f"numba-{__version__}"
    try:
        _dir.mkdir(parents=True, exist_ok=True)
        os.environ["NUMBA_CACHE_DIR"] = str(_dir)
    except OSError:  # unwritable home: numba falls back to its own default
        pass
    else:
        _config = sys.modules.get("numba.core.config")
        if _config is not None:
            _config.reload_config()
