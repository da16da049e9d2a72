"""Shadows cast on the screen key as screen (``keyer.evidence``; ``--keep-shadows`` keys them as
the colour difference sees them): a wide shade of the screen whose luma fell as a mix with black
does. Dark strands, a black subject and its motion-blurred edge are mixes with black too, but
not wide shades of the screen: they keep their alpha. Both key paths."""
import numpy as np
import pytest

from keyer.keying import KeySettings
from tests.test_planar import key_sequence

SCREENS = {"green": (40.0, 170.0, 70.0), "blue": (30.0, 70.0, 190.0)}
H, W = 96, 160


def _ramp(c):
    s = KeySettings()
    return min(max((c - s.similarity) / s.softness, 0.0), 1.0) * 255


def _screen(kind, seed):
    rng = np.random.default_rng(seed)
    return np.array(SCREENS[kind], np.float32) + rng.normal(0, 1.5, (H, W, 3)).astype(np.float32)


def _shade(depth):
    """A shadow: ``depth`` in a 60 x 80 px box, fading to nothing over 12 px around it."""
    yy, xx = np.mgrid[0:H, 0:W].astype(np.float32)
    inside = np.minimum(np.minimum(xx - 40, 132 - xx), np.minimum(yy - 18, 90 - yy))
    return depth * np.clip((inside + 12) / 12, 0, 1)[..., None]


@pytest.mark.parametrize("kind", ["green", "blue"])
@pytest.mark.parametrize("planar, denoise", [(True, 2), (False, 2), (False, 0)])
def test_a_shadow_cast_on_the_screen_keys_as_screen(kind, planar, denoise):
    """After the plate learned the clean screen, a 35 % shadow arrives: its body and its soft
    edge key clear (at most a pixel or two of a corner at 0.1 or more: a shade's corner has the
    least shade around it); kept, it keys as the ramp gives 35 % coverage."""
    shade = _shade(0.35)
    frames = [_screen(kind, i) for i in range(6)]
    frames += [_screen(kind, 6 + i) * (1 - shade) for i in range(2)]
    alpha = key_sequence(frames, KeySettings(color=kind, denoise=denoise), planar)
    kept = key_sequence(frames, KeySettings(color=kind, denoise=denoise, keep_shadows=True),
                         planar)
    body = (slice(24, 84), slice(46, 126))
    assert (alpha >= 26).sum() <= 2, (alpha >= 26).sum()
    assert alpha[body].mean() < 1, alpha[body].mean()
    assert abs(kept[body].mean() - _ramp(0.35)) < 8, kept[body].mean()


@pytest.mark.parametrize("planar", [True, False])
def test_dark_strands_and_a_black_subjects_blurred_edge_keep_their_alpha(planar):
    """A black subject with a 6 px motion-blurred edge and dark strands (2 px, 60 %) are mixes
    of black with the screen, as a shadow is; they are not wide shades, and key as they do with
    the shadows kept."""
    yy, xx = np.mgrid[0:H, 0:W].astype(np.float32)
    cover = np.zeros((H, W), np.float32)
    cover[20:76, 10:50] = 1.0
    cover[20:76, 50:56] = np.linspace(1, 0, 8)[1:7]          # the blur, 6 px
    for x0 in (80, 104, 128):                                # strands across the screen
        line = np.abs(xx - (x0 + 0.15 * (yy - 48))) < 1.0
        cover[line & (yy > 10) & (yy < 86)] = 0.6
    dark = np.array((20.0, 15.0, 10.0), np.float32)
    frames = [_screen("green", i) for i in range(6)]
    frames += [cover[..., None] * dark + (1 - cover[..., None]) * _screen("green", 6 + i)
               for i in range(2)]
    alpha = key_sequence(frames, KeySettings(color="green"), planar)
    kept = key_sequence(frames, KeySettings(color="green", keep_shadows=True), planar)
    assert alpha[24:72, 14:46].min() == 255                  # the subject
    strands = cover == 0.6
    assert alpha[strands].mean() > 0.4 * 255, alpha[strands].mean()
    assert abs(alpha[strands].mean() - kept[strands].mean()) < 1
    edge = (slice(24, 72), slice(48, 58))
    assert np.abs(alpha[edge] - kept[edge]).max() <= 2
