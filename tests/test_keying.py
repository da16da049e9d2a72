"""The chroma key on tiny frames you can reason about."""
import numpy as np
import pytest

from keyer.errors import UsageProblem
from keyer.keying import KeySettings, estimate_screen, key, parse_key_color

PALETTE = {
    "G": (0, 177, 64),      # green screen
    "B": (20, 60, 190),     # blue screen
    "S": (201, 150, 120),   # skin
    "W": (255, 255, 255),
    "K": (12, 10, 14),      # near black
    "Y": (230, 210, 30),    # yellow
    "R": (200, 30, 40),
}


def rgb(rows):
    return np.array([[PALETTE[c] for c in r] for r in rows], dtype=np.uint8)


def mix(a, b, t):
    return tuple(round((1 - t) * x + t * y) for x, y in zip(PALETTE[a], PALETTE[b]))


NO_FILTER = dict(denoise=0)


def test_screen_is_transparent_subject_is_opaque():
    alpha = key(rgb(["GGG", "GSG", "GGG"]), KeySettings(color="green", **NO_FILTER))[..., 3]
    assert alpha.tolist() == [[0, 0, 0], [0, 255, 0], [0, 0, 0]]


@pytest.mark.parametrize("colour", ["S", "W", "K", "Y", "R"])
def test_far_colours_are_opaque_and_unchanged(colour):
    img = rgb(["GGGGG", f"G{colour}{colour}{colour}G", "GGGGG"])
    out = key(img, KeySettings(color="green", **NO_FILTER))
    assert out[1, 1:4, 3].tolist() == [255, 255, 255]
    # fully opaque pixels whose green does not exceed the others keep their colour exactly
    assert out[1, 2, :3].tolist() == list(PALETTE[colour])


def test_blue_screen():
    # the screen's own colour: a 3x3 picture has too little border to measure it, and the
    # colour difference compares every channel with the screen's (nominal blue has 20 less red)
    alpha = key(rgb(["BBB", "BSB", "BYB"]), KeySettings(color="#143cbe", **NO_FILTER))[..., 3]
    assert alpha.tolist() == [[0, 0, 0], [0, 255, 0], [0, 255, 0]]


def test_auto_finds_blue_from_the_border():
    img = np.empty((40, 40, 3), np.uint8)
    img[:] = PALETTE["B"]
    img[15:25, 15:25] = PALETTE["S"]
    primary, screen = estimate_screen(img)
    assert primary == 2
    assert screen == pytest.approx(PALETTE["B"], abs=1)
    out = key(img, KeySettings(**NO_FILTER))
    assert out[0, 0, 3] == 0 and out[20, 20, 3] == 255


def _coverage_row(coverages):
    """A neutral grey subject over the screen at the given coverages, framed by screen rows."""
    grey = (128, 128, 128)
    row = [PALETTE["G"]] + [tuple(round(c * g + (1 - c) * s) for g, s in zip(grey, PALETTE["G"]))
                            for c in coverages] + [grey]
    img = np.array([row] * 3, np.uint8)
    img[0, :] = PALETTE["G"]
    img[2, :] = PALETTE["G"]
    return img


def test_matte_is_linear_in_coverage_with_an_open_ramp():
    cov = (0.1, 0.3, 0.5, 0.7, 0.9)
    alpha = key(_coverage_row(cov), KeySettings(color="green", similarity=0, softness=1,
                                                 tolerance=0, **NO_FILTER))[1, 1:6, 3].astype(int)
    assert alpha == pytest.approx([c * 255 for c in cov], abs=4)


def test_soft_edges_fall_between_and_in_order():
    cov = (0.2, 0.4, 0.6)
    alpha = key(_coverage_row(cov), KeySettings(color="green", **NO_FILTER))[1, :, 3].astype(int)
    assert alpha[0] == 0 and alpha[-1] == 255
    assert 0 < alpha[1] < alpha[2] < alpha[3] < 255
    s = KeySettings()
    expected = [np.clip((c - s.similarity) / s.softness, 0, 1) * 255 for c in cov]
    assert alpha[1:4] == pytest.approx(expected, abs=6)


def test_spill_is_removed_and_luminance_kept():
    # skin with a green cast, fully inside the subject
    tinted = (185, 190, 110)
    img = rgb(["GGGGG", "GSSSG", "GGGGG"])
    img[1, 2] = tinted
    out = key(img, KeySettings(color="green", **NO_FILTER))
    r, g, b = out[1, 2, :3].astype(int)
    assert g <= max(r, b)                      # no more green than the other two
    luma = lambda c: 0.2126 * c[0] + 0.7152 * c[1] + 0.0722 * c[2]  # noqa: E731
    assert luma((r, g, b)) == pytest.approx(luma(tinted), abs=2)
    no_spill = key(img, KeySettings(color="green", spill=0, **NO_FILTER))
    assert no_spill[1, 2, :3].tolist() == list(tinted)


def test_yellow_stays_yellow_with_the_default_limit():
    out = key(rgb(["GGGG", "GYYG", "GGGG"]), KeySettings(color="green", **NO_FILTER))
    assert out[1, 1, :3].tolist() == list(PALETTE["Y"])


def test_average_limit_removes_more():
    img = rgb(["GGGG", "GSSG", "GGGG"])
    img[1, 1] = (170, 165, 110)
    mx = key(img, KeySettings(color="green", spill_limit="max", **NO_FILTER))[1, 1, 1]
    avg = key(img, KeySettings(color="green", spill_limit="average", **NO_FILTER))[1, 1, 1]
    assert avg < mx


def test_edge_pixel_is_unmixed_from_the_screen():
    half = mix("S", "G", 0.4)
    img = rgb(["GGGGG", "GSSSG", "GGGGG"])
    img[1, 3] = half
    out = key(img, KeySettings(color="green", **NO_FILTER))
    r, g, b, a = out[1, 3].astype(int)
    assert 0 < a < 255
    assert g <= r                      # the screen's green is gone from the fringe
    assert abs(r - PALETTE["S"][0]) < 40


def test_uneven_screen_keys_evenly():
    h, w = 64, 96
    img = np.empty((h, w, 3), np.float32)
    light = np.linspace(0.6, 1.15, w)[None, :, None]     # a screen much darker on the left
    img[:] = np.array(PALETTE["G"], np.float32) * light
    img[24:40, 40:56] = PALETTE["S"]
    img = np.clip(img, 0, 255).astype(np.uint8)
    out = key(img, KeySettings(color="green"))
    screen = np.ones((h, w), bool)
    screen[20:44, 36:60] = False
    assert out[..., 3][screen].max() == 0
    assert out[26:38, 42:54, 3].min() == 255


def test_denoise_steadies_a_noisy_screen():
    rng = np.random.default_rng(1)
    img = np.clip(np.array(PALETTE["G"]) + rng.normal(0, 14, (48, 48, 3)), 0, 255).astype(np.uint8)
    raw = key(img, KeySettings(color="green", denoise=0))[..., 3]
    filtered = key(img, KeySettings(color="green", denoise=1))[..., 3]
    # fewer visible specks (over 3 %) and half the mean; the filter spreads what is left thinly
    assert (filtered > 8).sum() < 0.8 * (raw > 8).sum()
    assert filtered.mean() < 0.6 * raw.mean()


def test_clip_and_shrink_and_feather_shape_the_matte():
    img = rgb(["GGGGGGG"] * 2 + ["GGSSSGG"] * 3 + ["GGGGGGG"] * 2)
    shrunk = key(img, KeySettings(color="green", shrink=1, **NO_FILTER))[..., 3]
    assert shrunk.sum() == 255 and shrunk[3, 3] == 255
    feathered = key(img, KeySettings(color="green", feather=1.0, **NO_FILTER))[..., 3]
    assert 0 < feathered[3, 1] < 255 and feathered[3, 3] < 255


@pytest.mark.parametrize("bad", ["purple", "#12345", "#808080", ""])
def test_bad_key_colours_are_refused(bad):
    with pytest.raises(UsageProblem):
        parse_key_color(bad)


def test_hex_key_colour():
    assert parse_key_color("#00B140") == ("rgb", (0, 177, 64))
    alpha = key(rgb(["GGG", "GSG", "GGG"]), KeySettings(color="#00b140", **NO_FILTER))[..., 3]
    assert alpha.tolist() == [[0, 0, 0], [0, 255, 0], [0, 0, 0]]


@pytest.mark.parametrize("kwargs", [dict(similarity=1.5), dict(softness=0), dict(clip_black=0.6, clip_white=0.5),
                                    dict(spill_limit="median"), dict(shrink=-1)])
def test_bad_settings_are_refused(kwargs):
    with pytest.raises(UsageProblem):
        KeySettings(**kwargs)


# -- the core matte and the clean plate (issue 25) --------------------------------------------

def _subject_with(hole_px: int, at=(30, 30), size=96, notch=False):
    """A skin block over green with a screen-green square of ``hole_px`` inside it (a detail
    the screen's colour shows through), or (``notch``) the square cut to the block's edge."""
    img = np.empty((size, size, 3), np.uint8)
    img[:] = PALETTE["G"]
    img[16:80, 16:80] = PALETTE["S"]
    y, x = at
    img[y:y + hole_px, x:x + hole_px] = PALETTE["G"]
    if notch:
        img[y:y + hole_px, 16:x + hole_px] = PALETTE["G"]
    return img


def test_the_core_matte_fills_a_small_enclosed_island_and_keeps_its_colour():
    img = _subject_with(6)
    out = key(img, KeySettings(color="green", **NO_FILTER))
    assert out[16:80, 16:80, 3].min() == 255                 # no hole left in the subject
    assert out[32, 32, :3].tolist() == list(PALETTE["G"])    # its colour kept (no despill)
    assert out[:16, :, 3].max() == 0 and out[80:, :, 3].max() == 0
    off = key(img, KeySettings(color="green", fill_holes=0, **NO_FILTER))
    assert off[31:35, 31:35, 3].max() == 0                   # without it: a hole


def test_the_core_matte_leaves_a_large_gap_and_one_open_to_the_screen():
    gap = key(_subject_with(24), KeySettings(color="green", **NO_FILTER))
    assert gap[34:52, 34:52, 3].max() == 0                   # 576 px > 0.4 % of 96 x 96
    assert key(_subject_with(24), KeySettings(color="green", fill_holes=10,
                                              **NO_FILTER))[34:52, 34:52, 3].min() == 255
    notch = key(_subject_with(6, notch=True), KeySettings(color="green", fill_holes=10,
                                                          **NO_FILTER))
    assert notch[31:35, 20:35, 3].max() == 0                 # reaches the screen: stays open


@pytest.mark.parametrize("planar", [False, True])
def test_the_core_matte_on_both_paths_with_the_guided_filter(planar):
    from tests.test_planar import planar_key

    img = _subject_with(6, at=(40, 44))
    settings = KeySettings(color="green", fill_holes=2)   # 6 x 6 px: 4 cells of 4 x 4 px
    alpha = planar_key(img, settings)[1][3] if planar else key(img, settings)[..., 3]
    assert alpha[20:76, 20:76].min() == 255
    assert alpha[:12].max() == 0


def _veil_frames(n, start=0):
    """``n`` frames of a green screen (lit unevenly) with, from frame ``start``, a neutral grey
    veil at 50 % over its left half."""
    h, w = 64, 128
    light = np.linspace(0.85, 1.1, w, dtype=np.float32)[None, :, None]
    screen = np.array(PALETTE["G"], np.float32) * light * np.ones((h, 1, 1), np.float32)
    veiled = screen.copy()
    veiled[8:56, 8:64] = 0.5 * screen[8:56, 8:64] + 0.5 * 128.0
    return [np.clip((veiled if i >= start else screen) + 0.5, 0, 255).astype(np.uint8)
            for i in range(n)]


@pytest.mark.parametrize("start", [0, 3])
def test_a_veil_keeps_its_alpha_and_is_not_learned_as_screen(start):
    """A 50 % veil, there from the first frame or coming in over a screen already learned,
    keys at 50 % (within 10 %) frame after frame: the clean plate learns only from pixels that
    are confidently screen, so it does not take the veil for screen."""
    from keyer.keying import Keyer

    keyer = Keyer(KeySettings(color="green"), 128, 64)
    frame = np.empty((64, 128, 4), np.uint8)
    for img in _veil_frames(12, start):
        frame[..., :3] = img
        keyer(frame)
    veil = frame[12:52, 12:60, 3].astype(float)
    assert abs(veil.mean() - 127.5) < 12.75, veil.mean()
    assert frame[:, 72:, 3].max() == 0                         # the screen beside it: clear
    assert keyer.seen[1:3, 1:3].sum() == (0 if start == 0 else 4)   # under it: what it saw


def test_light_smoke_over_a_brighter_screen_is_not_learned_as_screen():
    """A light grey at 25 % adds the same to every channel, so over a part of the screen a
    third brighter than the border its colour difference is the screen's: by that alone the
    clean plate took part of it for screen and keyed it at 11-13 % (on the hard set's 25 %
    smoke it crept in frame by frame, to 0.5 % by the eighth). Its purity (colour difference
    over the green channel) is three quarters of the screen's, which light and shade never
    change, so it never teaches the plate: it keys at its coverage on every frame (its luma
    is not the screen's there, so the ramp's start does not cut it: ``guided.luma_evidence``)."""
    from keyer.keying import Keyer

    h, w = 64, 128
    light = np.linspace(1.3, 0.8, w, dtype=np.float32)[None, :, None]
    screen = np.array(PALETTE["G"], np.float32) * light * np.ones((h, 1, 1), np.float32)
    screen[8:56, 8:64] = 0.75 * screen[8:56, 8:64] + 0.25 * 200.0
    keyer = Keyer(KeySettings(color="green"), w, h)
    frame = np.empty((h, w, 4), np.uint8)
    want = 0.25 * 255
    for _ in range(12):
        frame[..., :3] = np.clip(screen + 0.5, 0, 255).astype(np.uint8)
        keyer(frame)
        smoke = frame[12:52, 12:60, 3].astype(float)
        assert abs(smoke.mean() - want) < 6, smoke.mean()
    assert frame[:, 72:, 3].max() == 0
    from tests.test_planar import planar_key   # the planar path's plate: the same rule

    alpha = planar_key(np.clip(screen + 0.5, 0, 255).astype(np.uint8), KeySettings(color="green"))[1][3]
    assert abs(alpha[12:52, 12:60].mean() - want) < 6, alpha[12:52, 12:60].mean()


def test_on_a_noisy_screen_the_plate_keeps_the_screens_purity():
    """The purity a pixel needs to teach the plate is a window about the screen's, not a floor:
    on a noisy screen (sigma 14) a floor let in only the purer half of the noise, and the plate
    learned a screen 6.6 % purer than the real one (more of it keyed as specks)."""
    from keyer.keying import Keyer

    true = np.array((40.0, 170.0, 70.0), np.float32)
    rng = np.random.default_rng(5)
    keyer = Keyer(KeySettings(color="green"), 128, 64)
    frame = np.empty((64, 128, 4), np.uint8)
    for _ in range(12):
        frame[..., :3] = np.clip(true + rng.normal(0, 14, (64, 128, 3)) + 0.5, 0, 255)
        keyer(frame)
    r, g, b = keyer.grid[..., :3].reshape(-1, 3).mean(0)
    assert abs((g - max(r, b)) / g / ((170 - 70) / 170) - 1) < 0.03, (r, g, b)


def test_the_plate_keeps_what_it_saw_behind_a_subject():
    """Screen cells the subject covers keep the colour they had before it came."""
    from keyer.keying import Keyer

    keyer = Keyer(KeySettings(color="green", **NO_FILTER), 96, 64)
    frame = np.empty((64, 96, 4), np.uint8)
    frame[..., :3] = PALETTE["G"]
    keyer(frame)
    before = keyer.grid[1:3, 2:4].copy()
    frame[..., :3] = PALETTE["G"]
    frame[8:56, 24:72, :3] = PALETTE["S"]
    for _ in range(4):
        keyer(frame)
    assert np.array_equal(keyer.grid[1:3, 2:4], before)


# -- the foreground scale: unmixing an edge with the foreground beside it --------------------

def _red_on_blue(columns):
    """A 12 x 24 blue screen whose columns 12.. are a red suit, with ``columns`` = {column:
    (colour name or RGB, coverage over the screen)} before it."""
    img = np.empty((12, 24, 3), np.float32)
    img[:] = PALETTE["B"]
    img[:, 12:] = PALETTE["R"]
    for j, (colour, c) in columns.items():
        fg = np.array(PALETTE[colour] if isinstance(colour, str) else colour, np.float32)
        img[:, j] = c * fg + (1 - c) * np.array(PALETTE["B"], np.float32)
    return np.clip(img + 0.5, 0, 255).astype(np.uint8)


def _ramp(c):
    """Alpha (0..255) the defaults' ramp gives a neutral mix at coverage ``c`` (1 - ratio):
    0 up to ``similarity``, opaque from ``similarity + softness``."""
    s = KeySettings()
    return 255 * (c - s.similarity) / s.softness


@pytest.mark.parametrize("planar", [False, True])
def test_an_edge_of_a_saturated_colour_keys_at_its_coverage(planar):
    """Red on blue is more opposed to the screen than neutral: a pixel at 40 % red looks like
    70 % coverage of a grey. Unmixed with the red beside it, it keys at 40 %, as a grey edge
    at 40 % does; the red itself stays opaque."""
    from tests.test_planar import planar_key

    img = _red_on_blue({10: ("R", 0.4), 11: ("R", 0.4)})
    settings = KeySettings(color="blue", **NO_FILTER)
    alpha = planar_key(img, settings)[1][3] if planar else key(img, settings)[..., 3]
    # (column 10: on the planar path column 11's chroma mixes with the red's: 4:2:0)
    assert abs(float(alpha[:, 10].max()) - _ramp(0.4)) <= 6, alpha[0]
    assert abs(float(alpha[:, 10].min()) - _ramp(0.4)) <= 6, alpha[0]
    assert alpha[:, 12:].min() == 255 and alpha[:, :8].max() == 0


@pytest.mark.parametrize("planar", [False, True])
def test_a_neutral_colour_beside_a_saturated_one_is_not_unmixed_with_it(planar):
    """Grey beside the red suit at the screen's edge stays opaque, and a grey veil at 50 %
    beside it keys at 50 %: neither lies on the way from the screen to the red, so neither is
    scaled by the red's ratio (which would key the grey ~40 % transparent)."""
    from tests.test_planar import planar_key

    settings = KeySettings(color="blue", **NO_FILTER)
    for c, want in ((1.0, 255), (0.5, _ramp(0.5))):
        img = _red_on_blue({10: ((128, 128, 128), c), 11: ((128, 128, 128), c)})
        alpha = planar_key(img, settings)[1][3] if planar else key(img, settings)[..., 3]
        assert np.abs(alpha[:, 10].astype(float) - want).max() <= 6, alpha[0]



def _keyed_under_light(lights, planar, veil_lit=False):
    """The matte (float) of the last of a green screen's frames under each of ``lights`` (its
    light's gain), a 50 % grey veil over its middle (the grey lit by the same light with
    ``veil_lit``), keyed in turn by one keyer; and the veil's mean alpha."""
    from tests.test_planar import key_sequence

    screen = np.array((40.0, 170.0, 70.0), np.float32)
    frames = []
    for light in lights:
        img = np.empty((64, 96, 3), np.float32)
        img[:] = screen * light
        img[16:48, 24:72] = 0.5 * img[16:48, 24:72] + 0.5 * 128.0 * (light if veil_lit else 1.0)
        frames.append(img)
    alpha = key_sequence(frames, KeySettings(color="green"), planar)
    return alpha, alpha[20:44, 28:68].mean()


@pytest.mark.parametrize("planar", [False, True])
def test_the_plate_follows_the_light_turned_up(planar):
    """The plate learns a screen brighter than it holds: after the light on the screen rises by
    30 % (a ratio of 1.3 to the plate), a 50 % grey veil over it keys at 50 % again within a few
    frames. (With the window closed at 1.15, as it was, the plate kept the old level and the
    veil keyed 40 levels off.)"""
    alpha, veil = _keyed_under_light([1.0] * 4 + [1.3] * 8, planar)
    assert abs(veil - 127.5) < 6, veil
    assert alpha[:8].max() == 0   # the brighter screen is screen


@pytest.mark.parametrize("planar", [False, True])
@pytest.mark.parametrize("light", [0.8, 0.5, 1.3])
def test_the_plate_follows_the_light_turned_down(planar, light):
    """The light on the whole screen falls by 20 % or by half from the fifth frame: the plate
    takes the gain at once (its pixels' ratio under SCREEN_MIN never teaches it), so on that
    very frame a 50 % grey veil over it keys at 50 % and the screen keys clear. Before, the
    veil keyed against the old level for good (20 % down: 30 levels too transparent). Turned
    up by 30 %, the plate learned it, but a frame late and at half the rate: now at once too."""
    alpha, veil = _keyed_under_light([1.0] * 4 + [light], planar)
    assert abs(veil - 127.5) < 6, veil
    assert alpha[:8].max() == 0 and alpha[:, :16].max() == 0


@pytest.mark.parametrize("planar", [False, True])
def test_the_plate_follows_a_fade(planar):
    """The light on the whole screen fades by 12 % a frame for 7 frames (to 41 %): the plate
    follows each frame's fall as it comes, so on the last frame a 50 % grey veil keys at 50 %
    and the screen keys clear. Learning alone (at half the rate, from ratios over 0.85 only)
    fell behind by the second frame and then stopped: the veil keyed opaque."""
    lights = [0.88 ** max(0, i - 3) for i in range(11)]
    alpha, veil = _keyed_under_light(lights, planar, veil_lit=True)
    assert abs(veil - 127.5) < 8, veil
    assert alpha[:8].max() == 0 and alpha[:, :16].max() == 0


@pytest.mark.parametrize("planar", [False, True])
def test_a_dark_subject_does_not_dim_the_plate(planar):
    """A black subject's soft edge 40 px wide over a 96 px picture, the screen beside it as
    bright as ever: the edge has the screen's purity and ratios under SCREEN_MIN over a fifth
    of the picture (as a darker screen's would), but the screen's own pixels keep a mean ratio
    of 1, so the plate keeps the screen's level and the screen keys clear."""
    from keyer.keying import Keyer, PlanarKeyer
    from tests.test_planar import BT709_TV, planes

    screen = np.array((40.0, 170.0, 70.0), np.float32)
    cover = np.clip((np.arange(96, dtype=np.float32) - 40) / 40.0, 0.0, 1.0)
    img = screen * (1.0 - cover)[None, :, None] * np.ones((64, 1, 1), np.float32)
    rgb = np.clip(img + 0.5, 0, 255).astype(np.uint8)
    settings = KeySettings(color="green")
    if planar:
        keyer = PlanarKeyer(settings, 96, 64)
        y, u, v = planes(rgb)
        out = [np.empty_like(y), np.empty_like(u), np.empty_like(v), np.empty_like(y)]
        for _ in range(5):
            keyer(y, u, v, BT709_TV, *out)
        alpha = out[3]
    else:
        keyer = Keyer(settings, 96, 64)
        rgba = np.empty((64, 96, 4), np.uint8)
        for _ in range(5):
            rgba[..., :3] = rgb
            keyer(rgba)
        alpha = rgba[..., 3]
    # the cells over the screen keep its level (the edge's mean ratio is ~0.55)
    assert np.abs(keyer.grid[:, :2, 1] / 170.0 - 1.0).max() < 0.03, keyer.grid[:, :2, 1]
    assert alpha[:, :32].max() == 0


@pytest.mark.parametrize("planar", [False, True])
def test_a_subject_of_the_screens_colour_coming_in_does_not_dim_the_plate(planar):
    """A subject of the screen's own colour at 70 % of its light (pure, a ratio of 0.7, as the
    screen under less light would be) comes in from the left, 8 px a frame, until it covers
    five sixths of the picture: its pixels soon outnumber the screen's, but the screen's own
    keep a mean ratio of 1, so the plate keeps the screen's level everywhere (had it followed,
    it would have learned the subject as screen)."""
    from keyer.keying import Keyer, PlanarKeyer
    from tests.test_planar import BT709_TV, planes

    screen = np.array((40.0, 170.0, 70.0), np.float32)
    settings = KeySettings(color="green", denoise=False)
    keyer = PlanarKeyer(settings, 192, 64) if planar else Keyer(settings, 192, 64)
    rgba = np.empty((64, 192, 4), np.uint8)
    for i in range(21):
        img = np.empty((64, 192, 3), np.float32)
        img[:] = screen
        img[:, :8 * i] *= 0.7
        rgb = np.clip(img + 0.5, 0, 255).astype(np.uint8)
        if planar:
            y, u, v = planes(rgb)
            out = [np.empty_like(y), np.empty_like(u), np.empty_like(v), np.empty_like(y)]
            keyer(y, u, v, BT709_TV, *out)
        else:
            rgba[..., :3] = rgb
            keyer(rgba)
    assert keyer.counts.sum() < 0.2 * 192 * 64   # the screen shows in a sixth of the picture
    assert np.abs(keyer.grid[..., 1] / 170.0 - 1.0).max() < 0.03, keyer.grid[1, :, 1]
