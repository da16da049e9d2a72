"""The planar key: 8-bit 4:2:0 planes in, the encoder's planes out, no RGB frame between.

Pictures are made as BT.709 limited-range planes by the encoder's own kernel, so both keys read
exactly the same samples; the RGBA path (``Keyer``) is the reference the planar one must follow.
"""
import numpy as np
import pytest

from keyer import kernels
from keyer.colour import BT709_LIMITED, YCbCr, plane_array
from keyer.kernels import encode as EK
from keyer.kernels import rgba as K
from keyer.encode import FORMATS, NO_PLANES, rgba_to_frame, yuv420_of
from keyer.keying import Keyer, KeySettings, PlanarKeyer, estimate_screen, estimate_screen_planar
from keyer.stages import planar_key_fits, planar_output
from tests.clips import green_frames

F = np.float32
BT709_TV = YCbCr(1, 1, F(16), F(255 / 219), F(128), F(255 / 224), F(2 * (1 - 0.2126)),
                 F(2 * (1 - 0.0722) * 0.0722 / 0.7152), F(2 * (1 - 0.2126) * 0.2126 / 0.7152),
                 F(2 * (1 - 0.0722)), np.dtype(np.uint8))
GREEN, SKIN, SPILL = (0, 177, 64), (201, 150, 120), (170, 195, 150)


def planes(rgb):
    """RGB (H, W, 3) -> BT.709 limited (Y', Cb, Cr) 4:2:0 planes."""
    h, w = rgb.shape[:2]
    rgba = np.dstack([rgb, np.full((h, w), 255, np.uint8)])
    y, a = np.empty((h, w), np.uint8), np.empty((h, w), np.uint8)
    u, v = np.empty((h // 2, w // 2), np.uint8), np.empty((h // 2, w // 2), np.uint8)
    EK.rgba_to_yuv(rgba, rgb, False, BT709_LIMITED, 8, 1, (y, u, v, a))
    return y, u, v


def planar_key(rgb, settings=KeySettings(color="green"), background=None, frames=1):
    y, u, v = planes(rgb)
    h, w = y.shape
    keyer = PlanarKeyer(settings, w, h, background)
    out = [np.empty_like(y), np.empty_like(u), np.empty_like(v), np.empty_like(y)]
    for _ in range(frames):
        keyer(y, u, v, BT709_TV, *out)
    return (y, u, v), out


def key_sequence(frames, settings, planar):
    """The alpha (float) of the last of ``frames`` (float RGB, H x W x 3), keyed in turn by one
    keyer: the planar one, or the RGBA one."""
    h, w = frames[0].shape[:2]
    if planar:
        keyer = PlanarKeyer(settings, w, h)
    else:
        keyer = Keyer(settings, w, h)
        rgba = np.empty((h, w, 4), np.uint8)
    for img in frames:
        rgb = np.clip(img + 0.5, 0, 255).astype(np.uint8)
        if planar:
            y, u, v = planes(rgb)
            out = [np.empty_like(y), np.empty_like(u), np.empty_like(v), np.empty_like(y)]
            keyer(y, u, v, BT709_TV, *out)
            alpha = out[3]
        else:
            rgba[..., :3] = rgb
            keyer(rgba)
            alpha = rgba[..., 3]
    return alpha.astype(float)


def blocks(left, right, h=8, w=16):
    img = np.empty((h, w, 3), np.uint8)
    img[:, : w // 2] = left
    img[:, w // 2:] = right
    return img


# Chroma is half resolution: the two pixels either side of the boundary (columns 7 and 8) mix
# screen and subject chroma, as any 4:2:0 decoder's upsampling does. The rest is exact.
SCREEN_PX, SUBJECT_PX = slice(0, 6), slice(10, 16)
SCREEN_C, SUBJECT_C = slice(0, 3), slice(5, 8)


@pytest.mark.parametrize("screen, primary", [((20, 150, 60), 1), ((30, 70, 190), 2)])
def test_the_screen_is_measured_from_the_planes_as_from_rgb(screen, primary):
    """The planar key measures the screen on the border at chroma resolution: the colour the
    RGB frame's full border gives, within rounding, and the subject in the middle is ignored."""
    rng = np.random.default_rng(3)
    rgb = np.clip(np.array(screen) + rng.normal(0, 4, (96, 128, 3)), 0, 255).astype(np.uint8)
    rgb[20:76, 30:98] = SKIN
    y, u, v = planes(rgb)
    rgba = np.empty((96, 128, 4), np.uint8)
    c = BT709_TV
    K.planes_to_rgba((y, u, v), (1, 1), c.coefficients, kernels.chroma_rows(y.shape[0], u.shape[1]),
                     rgba)
    want_primary, want = estimate_screen(rgba[..., :3])
    got_primary, got = estimate_screen_planar(y, u, v, c)
    assert got_primary == want_primary == primary
    assert got == pytest.approx(want, abs=2)
    assert got == pytest.approx(screen, abs=3)
    # forced to the other screen colour, neither finds one: both fall back to the nominal colour
    other = "blue" if primary == 1 else "green"
    assert estimate_screen_planar(y, u, v, c, other) == estimate_screen(rgba[..., :3], other)


def test_screen_is_transparent_black_and_subject_keeps_its_samples():
    (y, u, v), (yo, uo, vo, ao) = planar_key(blocks(GREEN, SKIN), KeySettings(color="green", denoise=0))
    assert ao[:, SCREEN_PX].max() == 0 and ao[:, SUBJECT_PX].min() == 255
    assert (yo[:, SCREEN_PX] == 16).all()
    assert (uo[:, SCREEN_C] == 128).all() and (vo[:, SCREEN_C] == 128).all()
    # skin has no spill: its luma is passed through exactly, its chroma within rounding
    assert (yo[:, SUBJECT_PX] == y[:, SUBJECT_PX]).all()
    assert np.abs(uo[:, SUBJECT_C].astype(int) - u[:, SUBJECT_C]).max() <= 1
    assert np.abs(vo[:, SUBJECT_C].astype(int) - v[:, SUBJECT_C]).max() <= 1


def rgb_of(y, u, v):
    rgba = np.empty((*y.shape, 4), np.uint8)
    c = BT709_TV
    K.planes_to_rgba((y, u, v), (1, 1), c.coefficients, kernels.chroma_rows(y.shape[0], u.shape[1]),
                     rgba)
    return rgba[..., :3].astype(int)


def test_spill_is_limited_and_luma_kept():
    (y, _, _), (yo, uo, vo, ao) = planar_key(blocks(GREEN, SPILL), KeySettings(color="green", denoise=0))
    r, g, b = rgb_of(yo, uo, vo)[:, SUBJECT_PX].reshape(-1, 3).T
    assert (ao[:, SUBJECT_PX] == 255).all()
    # green's excess over max(R, B) (25) is removed and its luminance (0.7152 x 25) given back
    # to all three: (170, 195, 150) -> (187.9, 187.9, 167.9)
    assert np.abs(np.stack([r, g, b], 1) - (188, 188, 168)).max() <= 3
    assert (yo[:, SUBJECT_PX] == y[:, SUBJECT_PX]).all()   # luminance restored: Y' unchanged


def test_flatten_composites_over_the_background():
    bg = planes(blocks((200, 30, 40), (200, 30, 40)))
    _, (yo, uo, vo, _) = planar_key(blocks(GREEN, SKIN), KeySettings(color="green", denoise=0), bg)
    assert (yo[:, SCREEN_PX] == bg[0][:, SCREEN_PX]).all()
    assert (uo[:, SCREEN_C] == bg[1][:, SCREEN_C]).all() and (vo[:, SCREEN_C] == bg[2][:, SCREEN_C]).all()
    skin = planes(blocks(SKIN, SKIN))
    for ours, theirs in zip((yo, uo, vo), skin):
        cols = SUBJECT_PX if ours.shape == yo.shape else SUBJECT_C
        assert np.abs(ours[:, cols].astype(int) - theirs[:, cols]).max() <= 1


def test_flatten_copies_the_background_on_both_sides_of_the_subject_sample_for_sample():
    """A noisy background and a subject in the middle of each row: the screen left of it and
    right of it is the background's own samples, each from its own place (a copy off by one
    column, or the right side taken from the left, shows)."""
    rng = np.random.default_rng(5)
    rgb = np.empty((8, 32, 3), np.uint8)
    rgb[:] = GREEN
    rgb[2:6, 12:20] = SKIN
    bg = planes(rng.integers(0, 256, (8, 32, 3), dtype=np.uint8))
    _, (yo, uo, vo, _) = planar_key(rgb, KeySettings(color="green", denoise=0), bg)
    screen_y = np.ones((8, 32), bool)
    screen_y[1:7, 10:22] = False          # the subject with its soft edge (the matte comes
    screen_c = np.ones((4, 16), bool)     # from chroma resolution)
    screen_c[:, 5:11] = False
    assert (yo[screen_y] == bg[0][screen_y]).all()
    assert (uo[screen_c] == bg[1][screen_c]).all() and (vo[screen_c] == bg[2][screen_c]).all()
    assert (yo[2:6, 12:20] != bg[0][2:6, 12:20]).any()   # the subject is not background


@pytest.mark.parametrize("settings", [KeySettings(), KeySettings(spill_limit="average", denoise=4),
                                      KeySettings(shrink=1, feather=1.5)])
def test_planar_key_follows_the_rgba_key(settings):
    rgb = green_frames(1, 96, 64)[0]
    (y, u, v), (yo, uo, vo, ao) = planar_key(rgb, settings, frames=3)
    rgba = np.empty((64, 96, 4), np.uint8)
    c = BT709_TV
    keyer = Keyer(settings, 96, 64)
    for _ in range(3):
        K.planes_to_rgba((y, u, v), (1, 1), c.coefficients, kernels.chroma_rows(64, u.shape[1]),
                         rgba)
        keyer(rgba)
    ref = rgba[..., 3].astype(int)
    diff = np.abs(ao.astype(int) - ref)
    assert diff.mean() < 1.0, diff.mean()
    assert np.percentile(diff, 99) <= 32      # the 1-2 px edge band, at sub-pixel offsets
    # transparent where the other is (within the soft edge's last levels, which the paths'
    # different chroma resolutions put either side of 0 since the ramp reaches further out)
    assert ((ao <= 16) == (ref <= 16)).mean() > 0.99
    assert ((ao == 0) == (ref == 0)).mean() > 0.97   # 0.979 (0.980 before faint coverage)
    assert ((ao == 255) == (ref == 255)).mean() > 0.99
    # colour where both are opaque: the same picture, within rounding
    both = (ao == 255) & (ref == 255)
    ours = rgb_of(yo, uo, vo)[both]
    assert np.abs(ours - rgba[..., :3].astype(int)[both]).mean() < 2.0


def test_planar_keyer_allocates_nothing_per_frame():
    import tracemalloc

    y, u, v = planes(green_frames(1, 160, 120)[0])
    keyer = PlanarKeyer(KeySettings(), 160, 120)
    out = [np.empty_like(y), np.empty_like(u), np.empty_like(v), np.empty_like(y)]
    for _ in range(3):
        keyer(y, u, v, BT709_TV, *out)
    tracemalloc.start()
    base, _ = tracemalloc.get_traced_memory()
    for _ in range(10):
        keyer(y, u, v, BT709_TV, *out)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak - base < 8192, f"planar keyer allocated up to {peak - base} bytes per 10 frames"


class Info:
    pix_fmt = "yuv420p"


@pytest.mark.parametrize("pix_fmt, size, fits", [
    ("yuv420p", (64, 48), True), ("yuvj420p", (64, 48), True), ("yuv444p", (64, 48), False),
    ("yuv420p10le", (64, 48), False), ("yuv420p", (63, 48), False), ("yuv420p", (64, 47), False),
])
def test_planar_key_fits_only_what_it_can_key(pix_fmt, size, fits):
    info = Info()
    info.pix_fmt = pix_fmt
    assert planar_key_fits(info, size) is fits


@pytest.mark.parametrize("pix_fmt, effects, pad, planes", [
    ("yuva420p", (), 0, True), ("yuv420p", (), 0, True), ("yuva420p", ("fx",), 0, False),
    ("yuva444p10le", (), 0, False), ("rgba", (), 0, False), ("yuva420p", (), 4, False),
])
def test_planar_key_writes_planes_only_for_8_bit_420_without_effects_or_padding(pix_fmt, effects,
                                                                                pad, planes):
    assert planar_output(pix_fmt, effects, pad) is planes


def test_rgba_output_is_the_planar_picture():
    """Keyed to RGBA (for the effects), each pixel has its own luma and its block's colour:
    encoding it again gives the planes the planar key writes directly, within rounding."""
    rgb = green_frames(1, 96, 64)[0]
    (y, u, v), planes = planar_key(rgb, frames=2)
    keyer = PlanarKeyer(KeySettings(), 96, 64)
    rgba = np.empty((64, 96, 4), np.uint8)
    for _ in range(2):
        keyer.to_rgba(y, u, v, BT709_TV, rgba)
    again = [np.empty_like(p) for p in planes]
    EK.rgba_to_yuv(rgba, rgba[..., :3], False, BT709_LIMITED, 8, 1, tuple(again))
    assert (again[3] == planes[3]).all()                          # the same alpha
    assert (rgba[planes[3] == 0] == 0).all()                      # transparent is (0, 0, 0, 0)
    for ours, theirs in zip(again[:3], planes[:3]):
        assert np.abs(ours.astype(int) - theirs).max() <= 2


@pytest.mark.parametrize("flatten", [False, True])
def test_encoder_fast_path_matches_the_general_kernel(flatten):
    rng = np.random.default_rng(7)
    rgba = rng.integers(0, 256, (8, 80, 4), dtype=np.uint8)
    rgba[:2, :, 3] = 0                     # a transparent row pair
    rgba[2:4, :, 3] = 255
    rgba[4:6, :37, 3] = 0                  # visible pixels from an odd column to an odd column,
    rgba[4:6, 71:, 3] = 0                  # past one 32-pixel scan step from either end
    rgba[6, :, 3] = 0
    rgba[7, :, 3] = 0
    rgba[7, 79, 3] = 9                     # only the very last pixel visible
    background = rng.integers(0, 256, (8, 80, 3), dtype=np.uint8)
    general = [np.zeros((8, 80), np.uint8), np.zeros((4, 40), np.uint8),
               np.zeros((4, 40), np.uint8), np.zeros((8, 80), np.uint8)]
    fast = [np.full_like(p, 0xAB) for p in general]   # reused buffers: every sample is written
    EK.rgba_to_yuv(rgba, background, flatten, BT709_LIMITED, 8, 1, tuple(general))
    bg_planes = yuv420_of(background) if flatten else NO_PLANES
    EK.rgba_to_yuv420(rgba, rgba.view(np.uint32)[..., 0], background, flatten, bg_planes,
                      BT709_LIMITED, tuple(fast))
    planes = 3 if flatten else 4                      # flattened output has no alpha plane
    for g, f in zip(general[:planes], fast[:planes]):
        assert (g == f).all()


def test_flattening_a_frame_without_the_backgrounds_planes_makes_them():
    """``rgba_to_frame`` given only the background picture (no planes made once per job) still
    composites exactly as the general kernel does, instead of reading planes that are not there."""
    rng = np.random.default_rng(11)
    rgba = rng.integers(0, 256, (12, 40, 4), dtype=np.uint8)
    rgba[:4, :, 3] = 0
    background = rng.integers(0, 256, (12, 40, 3), dtype=np.uint8)
    vf = rgba_to_frame(rgba, FORMATS[".mp4"], background)
    want = [np.zeros((12, 40), np.uint8), np.zeros((6, 20), np.uint8), np.zeros((6, 20), np.uint8),
            np.zeros((12, 40), np.uint8)]
    EK.rgba_to_yuv(rgba, background, True, BT709_LIMITED, 8, 1, tuple(want))
    for i, (w, plane) in enumerate(zip(want[:3], vf.planes)):
        assert (plane_array(plane, np.uint8, w.shape[1]) == w).all(), f"plane {i}"


@pytest.mark.parametrize("ext", [".webm", ".mp4", ".mov"])
def test_a_reused_encoder_frame_holds_only_the_new_picture(ext):
    """The sink converts into two frames reused in turn: converting a second picture into a
    frame that held another gives exactly the planes a fresh frame gets (nothing of the first
    left, in the transparent part either)."""
    rng = np.random.default_rng(12)
    fmt = FORMATS[ext]
    first = rng.integers(0, 256, (12, 40, 4), dtype=np.uint8)
    second = rng.integers(0, 256, (12, 40, 4), dtype=np.uint8)
    second[:, :20, 3] = 0
    background = rng.integers(0, 256, (12, 40, 3), dtype=np.uint8)
    reused = rgba_to_frame(first, fmt, background)
    assert rgba_to_frame(second, fmt, background, out=reused) is reused
    fresh = rgba_to_frame(second, fmt, background)
    dtype = np.uint8 if "10" not in fmt.pix_fmt else np.dtype("<u2")
    for i, (a, b) in enumerate(zip(reused.planes, fresh.planes)):
        w = a.width
        assert (plane_array(a, dtype, w) == plane_array(b, dtype, w)).all(), f"plane {i}"


def test_rgba_key_clears_only_what_its_buffer_held_and_boxes_what_it_wrote():
    """Keyed to RGBA into a ring of two buffers, told where each was non-zero before: the same
    pictures as keyed into garbage with nothing known (every transparent pixel cleared). The
    subject moves, leaves (an empty frame) and comes back at the corner; the box returned holds
    every non-zero pixel and is tight to 2x2 blocks."""
    h, w = 64, 96
    rgb = green_frames(6, w, h)
    rgb.insert(3, np.tile(np.array(GREEN, np.uint8), (h, w, 1)))      # no subject at all
    rgb.append(np.roll(rgb[0], (h // 2 - 4, -w // 3), axis=(0, 1)))  # at the bottom-left corner
    ring = [np.zeros((h, w, 4), np.uint8) for _ in range(2)]
    known = [(0, 0, 0, 0)] * 2
    tracked, alone = PlanarKeyer(KeySettings(), w, h), PlanarKeyer(KeySettings(), w, h)
    rng = np.random.default_rng(5)
    for k, picture in enumerate(rgb):
        y, u, v = planes(picture)
        known[k % 2] = tracked.to_rgba(y, u, v, BT709_TV, ring[k % 2], known[k % 2])
        want = rng.integers(0, 256, (h, w, 4)).astype(np.uint8)
        assert alone.to_rgba(y, u, v, BT709_TV, want) == known[k % 2]
        got = ring[k % 2]
        assert np.array_equal(got, want), f"frame {k}"
        y0, y1, x0, x1 = known[k % 2]
        if k == 3:
            assert known[k % 2] == (0, 0, 0, 0) and not got.any()
            continue
        beyond = np.ones((h, w), bool)
        beyond[y0:y1, x0:x1] = False
        assert not got[beyond].any() and got[..., 3].any()
        seen = got[..., 3] > 0
        for edge in (seen[y0:y0 + 2], seen[y1 - 2:y1], seen[:, x0:x0 + 2], seen[:, x1 - 2:x1]):
            assert edge.any(), f"frame {k}: box {known[k % 2]} is not tight"
