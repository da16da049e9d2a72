"""Faint coverage that luma confirms (``guided.luma_evidence``): below the ramp's midpoint a sample
keys its coverage as it is where its luma is not the screen's there; where it is (a
colour of the screen's luma, chroma bled from an edge) or where the change is a shade of the
screen itself (a shadow), the ramp's start still cuts it, on both key paths."""
import numpy as np
import pytest

from keyer.keying import Keyer, KeySettings, key
from keyer.kernels.guided import _median
from tests.test_planar import planar_key

SCREEN = np.array((40.0, 170.0, 70.0), np.float32)
SCREEN_LUMA = float(SCREEN @ np.array((0.2126, 0.7152, 0.0722), np.float32))   # 135.1


def _ramp(c):
    s = KeySettings()
    return min(max((c - s.similarity) / s.softness, 0.0), 1.0) * 255


def _mixes(h=64, w=128):
    """The screen with two 25 % veils: a light grey (220) on the left, a grey of the screen's
    own luma on the right. Either mix's purity is under 0.85 of the screen's: the plate never
    learns them."""
    img = np.empty((h, w, 3), np.float32)
    img[:] = SCREEN
    img[8:56, 8:56] = 0.75 * SCREEN + 0.25 * 220.0
    img[8:56, 72:120] = 0.75 * SCREEN + 0.25 * SCREEN_LUMA
    return np.clip(img + 0.5, 0, 255).astype(np.uint8)


def _keyed(img, settings, planar, frames=3):
    if planar:
        return planar_key(img, settings, frames=frames)[1][3]
    keyer = Keyer(settings, img.shape[1], img.shape[0])
    rgba = np.empty((*img.shape[:2], 4), np.uint8)
    for _ in range(frames):
        rgba[..., :3] = img
        keyer(rgba)
    return rgba[..., 3]


@pytest.mark.parametrize("planar", [False, True])
@pytest.mark.parametrize("denoise", [2, 0])   # on the guided model, or on the ratio itself
def test_a_light_veil_keys_at_its_coverage_and_one_of_the_screens_luma_on_the_ramp(planar, denoise):
    img = _mixes()
    alpha = _keyed(img, KeySettings(color="green", denoise=denoise), planar).astype(float)
    light, same = alpha[12:52, 12:52].mean(), alpha[12:52, 76:116].mean()
    assert abs(light - 0.25 * 255) < 3, light          # its coverage, as it is
    assert abs(same - _ramp(0.25)) < 3, same           # the ramp: luma cannot confirm it
    off = _keyed(img, KeySettings(color="green", faint=False), planar).astype(float)
    assert abs(off[12:52, 12:52].mean() - _ramp(0.25)) < 3   # --no-faint: the ramp for both
    assert abs(off[12:52, 76:116].mean() - same) < 1
    assert alpha[:, :4].max() == 0 and alpha[:4].max() == 0   # the screen stays clear


def test_a_shadow_falling_on_the_screen_is_not_kept_as_faint_coverage():
    """A shade of the screen is the screen mixed with black: its luma falls by exactly its
    coverage times the screen's, which the rule reads as no evidence (black smoke keys like a
    shadow, as on the ramp). A light veil arriving the same way is kept. (With the shadows
    kept, so that the shade reaches this rule: by default it is dropped, test_shadows.)"""
    h, w = 64, 128
    results = {}
    for faint in (True, False):
        keyer = Keyer(KeySettings(color="green", faint=faint, keep_shadows=True), w, h)
        rgba = np.empty((h, w, 4), np.uint8)
        for i in range(8):
            img = np.empty((h, w, 3), np.float32)
            img[:] = SCREEN
            if i >= 6:   # once the plate has learned the clean screen
                img[8:56, 8:56] *= 0.85                          # a shadow
                img[8:56, 72:120] = 0.85 * SCREEN + 0.15 * 220   # a light veil
            rgba[..., :3] = np.clip(img + 0.5, 0, 255).astype(np.uint8)
            keyer(rgba)
        results[faint] = rgba[..., 3].astype(float)
    shadow, veil = results[True][12:52, 12:52].mean(), results[True][12:52, 76:116].mean()
    assert abs(shadow - results[False][12:52, 12:52].mean()) < 1, shadow
    assert shadow < _ramp(0.15) + 3
    assert abs(veil - 0.15 * 255) < 3, veil
    assert abs(results[False][12:52, 76:116].mean() - _ramp(0.15)) < 3


def test_a_noisy_screen_gets_no_more_faint_alpha():
    """The thresholds follow the screen's own noise, measured on it: sigma 8 on every channel
    (after the guided filter) keys as few pixels above 0 as without the rule."""
    rng = np.random.default_rng(3)
    img = np.clip(SCREEN + rng.normal(0, 8, (96, 128, 3)) + 0.5, 0, 255).astype(np.uint8)
    on = key(img, KeySettings(color="green"))[..., 3]
    off = key(img, KeySettings(color="green", faint=False))[..., 3]
    assert (on > 0).sum() <= (off > 0).sum() + 0.001 * on.size, ((on > 0).sum(), (off > 0).sum())
    assert on.max() <= off.max() + 2


@pytest.mark.parametrize("n", [1, 2, 3, 8, 101, 4000])
def test_the_noise_median_is_numpys(n):
    rng = np.random.default_rng(n)
    for values in (rng.normal(size=n), rng.integers(0, 4, n)):   # with many ties
        x = values.astype(np.float32)
        assert _median(x.copy()) == np.sort(x)[n // 2]
