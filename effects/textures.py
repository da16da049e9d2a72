"""Textures and noise for the effects: loaded or generated once per job, at the frame size."""
from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np

from keyer.errors import UsageProblem

BUILTIN = ("paper",)


def check_texture(effect: str, key: str, spec: str, builtins: tuple[str, ...] = BUILTIN) -> None:
    """Fail early (before decoding) when a texture path does not exist or cannot be read."""
    if spec in builtins:
        return
    p = Path(spec)
    if not p.is_file():
        raise UsageProblem(f"{effect}: {key}={spec}: no such file (or use {'|'.join(builtins)})")
    if cv2.imread(str(p), cv2.IMREAD_UNCHANGED) is None:
        raise UsageProblem(f"{effect}: {key}={spec}: not an image OpenCV can read")


def _tileable_noise(rng: np.random.Generator, size: int, sigma: float) -> np.ndarray:
    n = rng.normal(0, 1, (size, size)).astype(np.float32)
    big = cv2.GaussianBlur(np.tile(n, (3, 3)), (0, 0), sigma)   # blur across the seams
    return big[size:2 * size, size:2 * size]


@lru_cache(maxsize=2)
def paper_grain(size: int = 512, seed: int = 42) -> np.ndarray:
    """A tileable light paper texture, (size, size, 3) uint8 RGB (fibres, blotches, grain).

    Making it takes ~200 ms (a sigma-24 blur over 1536x1536), so it is kept in the per-user
    cache beside Numba's (``keyer.cache``), keyed by the numpy and OpenCV versions that made
    it; where the cache cannot be written it is simply made again.
    """
    from keyer.cache import cache_dir

    path = cache_dir() / "textures" / f"paper-{size}-{seed}-np{np.__version__}-cv{cv2.__version__}.npy"
    try:
        cached = np.load(path)
        if cached.shape == (size, size, 3) and cached.dtype == np.uint8:
            return cached
    except (OSError, ValueError):
        pass
    paper = _make_paper(size, seed)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        with open(tmp, "wb") as fh:
            np.save(fh, paper)
        os.replace(tmp, path)
    except OSError:
        pass
    return paper


def _make_paper(size: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    fine = rng.normal(0, 1, (size, size)).astype(np.float32)
    fibres = _tileable_noise(rng, size, 6)
    blotches = _tileable_noise(rng, size, 24)
    g = 0.5 * fine / fine.std() + 0.8 * fibres / fibres.std() + 0.6 * blotches / blotches.std()
    paper = np.clip(228 + 9 * g, 0, 255)
    return np.stack([paper, paper - 3, paper - 9], axis=-1).astype(np.uint8)


def smooth_noise(rng: np.random.Generator, size: int, sigma: float) -> np.ndarray:
    """Tileable smooth noise in -1..1, (size, size) float32."""
    n = _tileable_noise(rng, size, sigma)
    return n / (np.abs(n).max() + 1e-6)


def load_rgb(spec: str, width: int, height: int, fit: str = "stretch") -> np.ndarray:
    """A texture as (height, width, 3) uint8 RGB: built-in name or image path, tiled or stretched.

    Resized once per job with OpenCV's area filter (shrinking) or bicubic (growing).
    """
    img = _image(spec)
    if fit == "tile":
        ny, nx = -(-height // img.shape[0]), -(-width // img.shape[1])
        return np.ascontiguousarray(cv2.repeat(img, ny, nx)[:height, :width])
    shrink = img.shape[0] * img.shape[1] > width * height
    return cv2.resize(img, (width, height), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_CUBIC)


# A tile is widened (repeated) to at least this many px, so that the kernels' runs of pixels
# within one copy of it stay long: they vectorise.
MIN_RUN = 256


def load_tile(spec: str, width: int, height: int, fit: str = "stretch") -> np.ndarray:
    """A texture as ``load_rgb`` gives it for a ``width`` x ``height`` frame, but only as much
    of it as repeats: (th, tw, 3) uint8 RGB whose pixel ``(i % th, j % tw)`` is ``load_rgb``'s
    ``(i, j)``. Tiled, that is the image itself (cut to the frame, and repeated across to at
    least ``MIN_RUN`` px): 1 MB for the 512 px paper where the frame would be 8 MB at 1080p.
    Stretched, it is the whole frame."""
    if fit != "tile":
        return load_rgb(spec, width, height, fit)
    img = _image(spec)
    th, tw = min(height, img.shape[0]), min(width, img.shape[1])
    across = min(-(-MIN_RUN // tw), -(-width // tw))
    return np.ascontiguousarray(cv2.repeat(img[:th, :tw], 1, across)[:, :width])


def _image(spec: str) -> np.ndarray:
    """The texture's own picture, (h, w, 3) uint8 RGB: the built-in paper or an image file."""
    if spec == "paper":
        return paper_grain()
    bgr = cv2.imread(spec, cv2.IMREAD_COLOR)
    if bgr is None:
        raise UsageProblem(f"{spec}: cannot read the image")
    return np.ascontiguousarray(bgr[..., ::-1])


def with_alpha(rgb: np.ndarray, alpha: int) -> np.ndarray:
    """(H, W, 3) uint8 RGB as (H, W, 4) RGBA with every alpha ``alpha`` (0 or 255).

    By OpenCV and one pass over packed pixels: writing a channel of a whole frame through a
    strided numpy view took ~25 ms at 1080p, in a job's start-up."""
    rgba = cv2.cvtColor(rgb, cv2.COLOR_RGB2RGBA)      # alpha 255
    if alpha == 0:
        words = rgba.view(np.uint32)                  # little-endian: alpha is the top byte
        np.bitwise_and(words, np.uint32(0x00FFFFFF), out=words)
    elif alpha != 255:
        raise ValueError(f"alpha {alpha}: 0 or 255")
    return rgba
