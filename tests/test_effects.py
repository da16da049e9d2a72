"""Sticker effects on tiny synthetic frames with exact expectations."""
from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

from keyer import effects
from keyer.effects import Geometry, build, parse_chain
from keyer.effects.displacement import grid_maps
from keyer.errors import UsageProblem


def canvas(h=24, w=24):
    return np.zeros((h, w, 4), np.uint8)


def square(h=24, w=24, top=8, left=8, size=8, rgb=(200, 120, 60)):
    img = canvas(h, w)
    img[top:top + size, left:left + size, :3] = rgb
    img[top:top + size, left:left + size, 3] = 255
    return img


def apply(name, src, t=0.0, **params):
    op = build(name, params).bind(Geometry(width=src.shape[1], height=src.shape[0], fps=24))
    out = np.empty_like(src)
    op(src, out, t)
    return out


def white_png(tmp_path, rgb=(255, 255, 255), size=(8, 8)):
    import cv2

    img = np.empty((*size, 3), np.uint8)
    img[...] = rgb[::-1]
    p = tmp_path / "tex.png"
    cv2.imwrite(str(p), img)
    return str(p)


# ---------------------------------------------------------------- multiply / add
def test_multiply_with_white_texture_changes_nothing(tmp_path):
    src = square()
    src[0, 0] = (9, 8, 7, 0)
    assert np.array_equal(apply("multiply", src, texture=white_png(tmp_path), opacity=1.0), src)


def test_multiply_formula_and_alpha(tmp_path):
    src = square(rgb=(200, 100, 50))
    tex = white_png(tmp_path, rgb=(128, 128, 128))
    out = apply("multiply", src, texture=tex, opacity=0.5)
    f = 1 - 0.5 + 0.5 * 128 / 255
    assert out[10, 10, :3].tolist() == [round(200 * f), round(100 * f), round(50 * f)]
    assert np.array_equal(out[..., 3], src[..., 3])
    assert out[0, 0, 3] == 0


def test_multiply_keeps_every_alpha_value_at_any_opacity():
    src = np.zeros((16, 16, 4), np.uint8)
    src[..., 3] = np.arange(256, dtype=np.uint8).reshape(16, 16)
    src[..., :3] = 255
    for opacity in np.linspace(0.0, 1.0, 101):
        out = apply("multiply", src, opacity=float(opacity))
        assert np.array_equal(out[..., 3], src[..., 3]), opacity


def test_multiply_opacity_zero_is_identity():
    src = square()
    assert np.array_equal(apply("multiply", src, opacity=0.0), src)


def test_add_is_clamped_and_keeps_alpha():
    src = square(rgb=(250, 100, 10))
    out = apply("add", src, texture="none", color="#203040", opacity=1.0)
    assert out[10, 10].tolist() == [255, 100 + 0x30, 10 + 0x40, 255]
    assert np.array_equal(out[..., 3], src[..., 3])
    assert np.array_equal(apply("add", src, opacity=0.0), src)


def noise_png(tmp_path, h, w, seed=5):
    import cv2

    img = np.random.default_rng(seed).integers(0, 256, (h, w, 3)).astype(np.uint8)
    p = tmp_path / f"noise-{h}x{w}.png"
    cv2.imwrite(str(p), img)
    return str(p)


@pytest.mark.parametrize("image", [(8, 8), (40, 700), (300, 90), "paper"])
@pytest.mark.parametrize("frame", [(60, 100), (90, 1300), (800, 64)])
def test_a_tile_repeats_into_the_whole_texture(tmp_path, image, frame):
    """load_tile keeps one tile of a tiled texture (widened to MIN_RUN px at least); repeated,
    it is load_rgb's whole-frame texture, pixel for pixel."""
    from keyer.effects.textures import MIN_RUN, load_rgb, load_tile

    spec = image if image == "paper" else noise_png(tmp_path, *image)
    h, w = frame
    whole = load_rgb(spec, w, h, "tile")
    tile = load_tile(spec, w, h, "tile")
    th, tw = tile.shape[:2]
    assert th <= h and tw <= w and (tw >= MIN_RUN or tw == w)
    assert tile.nbytes <= whole.nbytes
    ii, jj = np.mgrid[0:h, 0:w]
    assert np.array_equal(tile[ii % th, jj % tw], whole)
    assert np.array_equal(load_tile(spec, w, h, "stretch"), load_rgb(spec, w, h, "stretch"))


@pytest.mark.parametrize("name, texture", [("multiply", "image"), ("multiply", "paper"),
                                           ("add", "image"), ("add", "none")])
def test_a_tiled_texture_gives_what_the_whole_frame_texture_gives(tmp_path, name, texture):
    """The kernels walk the tile: the result equals the kernel run on the whole-frame texture
    (a tile as large as the frame)."""
    from keyer.effects import _composite

    h, w = 70, 1100
    src = np.random.default_rng(2).integers(0, 256, (h, w, 4)).astype(np.uint8)
    spec = {"image": noise_png(tmp_path, 30, 45), "paper": "paper", "none": "none"}[texture]
    op = build(name, {"texture": spec}).bind(Geometry(width=w, height=h, fps=24))
    tile = op.tex if name == "multiply" else op.addend      # (th, tw * 4) bytes
    assert tile.nbytes < src.nbytes
    th, tw = tile.shape[0], tile.shape[1] // 4
    ii, jj = np.mgrid[0:h, 0:w]
    whole = tile.reshape(th, tw, 4)[ii % th, jj % tw]
    got, want = np.empty_like(src), np.empty_like(src)
    op(src, got, 0.0)
    if name == "multiply":
        op.tex = _composite.byte_rows(whole)
    else:
        op.addend = _composite.byte_rows(whole)
    op(src, want, 0.0)
    assert np.array_equal(got, want)


# ---------------------------------------------------------------- bevels
def test_alpha_bevel_leaves_interior_exact_and_lights_the_facing_edge():
    src = square(h=40, w=40, top=6, left=6, size=28, rgb=(120, 120, 120))
    out = apply("alpha-bevel", src, thickness=4, angle=315, intensity=0.8)   # light from up-left
    interior = (slice(6 + 6, 34 - 6), slice(6 + 6, 34 - 6))
    assert np.array_equal(out[interior], src[interior])
    assert out[7, 20, 0] > 120       # top edge faces the light: brighter
    assert out[20, 7, 0] > 120       # left edge too
    assert out[32, 20, 0] < 120      # bottom edge faces away: darker
    assert out[20, 32, 0] < 120
    assert np.array_equal(out[..., 3], src[..., 3])


def test_surface_bevel_flat_height_is_identity_and_relief_is_lit():
    src = canvas(16, 16)
    src[...] = (100, 100, 100, 255)
    assert np.array_equal(apply("surface-bevel", src), src)        # flat height: unchanged
    ramp = canvas(16, 16)
    ramp[..., 3] = 255
    ramp[:, :, :3] = np.linspace(40, 200, 16, dtype=np.uint8)[None, :, None]   # rises to the right
    lit_left = apply("surface-bevel", ramp, angle=270, depth=20)     # light from the left
    lit_right = apply("surface-bevel", ramp, angle=90, depth=20)
    assert lit_left[8, 8, 0] > ramp[8, 8, 0] > lit_right[8, 8, 0]
    assert np.array_equal(lit_left[..., 3], ramp[..., 3])


# ---------------------------------------------------------------- drop shadow
@pytest.mark.parametrize("angle, dx, dy", [(90, 5, 0), (180, 0, 5), (0, 0, -5), (270, -5, 0)])
def test_drop_shadow_lands_exactly_distance_away(angle, dx, dy):
    src = canvas(32, 32)
    src[14:18, 14:18] = (255, 0, 0, 255)
    out = apply("drop-shadow", src, angle=angle, distance=5, opacity=0.5, softness=0)
    shadow = (out[..., 3] > 0) & (src[..., 3] == 0)
    ys, xs = np.nonzero(shadow)
    expect = np.zeros((32, 32), bool)
    expect[14 + dy:18 + dy, 14 + dx:18 + dx] = True
    expect &= src[..., 3] == 0
    assert np.array_equal(shadow, expect)
    assert set(out[shadow, 3].tolist()) == {128}          # opacity 0.5 of a full alpha
    assert out[shadow, :3].max() == 0                      # black
    assert np.array_equal(out[14:18, 14:18], src[14:18, 14:18])   # subject on top


def test_drop_shadow_default_is_down_right_and_shadow_only():
    src = canvas(32, 32)
    src[10:14, 10:14] = (255, 255, 255, 255)
    out = apply("drop-shadow", src, distance=4 * 2 ** 0.5)   # 135 degrees: (4, 4)
    assert out[16, 16, 3] == 128 and out[9, 9, 3] == 0
    only = apply("drop-shadow", src, distance=4 * 2 ** 0.5, shadow_only=True)
    assert only[11, 11, 3] == 0 and only[15, 15, 3] == 128


def test_soft_shadow_spreads():
    src = canvas(40, 40)
    src[15:25, 15:25, 3] = 255
    hard = apply("drop-shadow", src, distance=5, softness=0)
    soft = apply("drop-shadow", src, distance=5, softness=6)
    assert (soft[..., 3] > 0).sum() > (hard[..., 3] > 0).sum()


# ---------------------------------------------------------------- outline
def test_outline_of_width_w_grows_a_pixel_into_a_disk():
    src = canvas(31, 31)
    src[15, 15] = (10, 20, 30, 255)
    out = apply("outline", src, width=5, softness=0, color="#ff0000")
    yy, xx = np.mgrid[0:31, 0:31]
    disk = (yy - 15) ** 2 + (xx - 15) ** 2 <= 25
    assert np.array_equal(out[..., 3] == 255, disk)
    assert out[15, 20, :3].tolist() == [255, 0, 0]
    assert out[15, 15].tolist() == [10, 20, 30, 255]


# ---------------------------------------------------------------- displacement
def test_displacement_amount_zero_is_identity():
    src = square()
    src[0, 0] = (1, 2, 3, 0)
    assert np.array_equal(apply("displacement", src, amount=0), src)


def test_displacement_by_a_constant_map_shifts(tmp_path):
    # R = 255 -> +1 * amount in x; G = 128 -> no y shift
    tex = white_png(tmp_path, rgb=(255, 128, 128))
    src = canvas(16, 16)
    src[6:10, 6:10] = (0, 0, 255, 255)
    out = apply("displacement", src, map=tex, amount=3)
    # out(x) = src(x + 3): the square moves 3 px left
    assert np.array_equal(out[..., 3] > 0, np.roll(src[..., 3] > 0, -3, axis=1))


def test_displacement_samples_premultiplied_no_fringe(tmp_path):
    tex = white_png(tmp_path, rgb=(192, 128, 128))       # x shift of amount * 0.504
    src = canvas(8, 8)
    src[:, :4] = (255, 0, 0, 255)                        # opaque red
    src[:, 4:] = (0, 255, 0, 0)                          # transparent green
    out = apply("displacement", src, map=tex, amount=1, edge="clamp")
    edge = out[4, 3]
    assert 0 < edge[3] < 255
    assert edge[0] == 255 and edge[1] == 0               # still pure red, no green or dark fringe


def test_displacement_noise_moves_and_boils():
    src = square(h=48, w=48, top=12, left=12, size=24)
    a = apply("displacement", src, t=0.0, amount=4)
    b = apply("displacement", src, t=0.3, amount=4)
    assert not np.array_equal(a[..., 3], src[..., 3])
    assert not np.array_equal(a[..., 3], b[..., 3])
    still = apply("displacement", src, t=0.3, amount=4, speed=0)
    assert np.array_equal(still, apply("displacement", src, t=0.0, amount=4, speed=0))


@pytest.mark.parametrize("w, h, scale", [(96, 64, 24.0), (101, 37, 10.0)])
def test_displacement_noise_is_the_grid_upsampled_as_cv2_resize_does(w, h, scale):
    """The noise fields are sampled from the small grids inside the box only; the maps are those
    of the grids resized (bilinear) to the whole frame, within float rounding."""
    import cv2

    op = build("displacement", {"amount": 5, "scale": scale}).bind(Geometry(width=w, height=h, fps=24))
    op._fields(0.4)
    fields = [cv2.resize(g, (w, h), interpolation=cv2.INTER_LINEAR) for g in op.small]
    box = (3, h - 5, 7, w - 2)           # (y0, y1, x0, x1), read from the image at (x 9, y 4)
    map_x = np.full((h, w), -1.0, np.float32)
    map_y = np.full((h, w), -1.0, np.float32)
    grid_maps(*op.small, op.cols, op.colf, op.rows, op.rowf, np.float32(5), np.float32(5), *box,
              9, 4, 0, op.line, map_x, map_y)
    y0, y1, x0, x1 = box
    yy, xx = np.mgrid[y0:y1, x0:x1]
    assert np.abs(map_x[y0:y1, x0:x1] - (xx + 5 * fields[0][y0:y1, x0:x1] - 9)).max() < 1e-3
    assert np.abs(map_y[y0:y1, x0:x1] - (yy + 5 * fields[1][y0:y1, x0:x1] - 4)).max() < 1e-3
    outside = np.ones((h, w), bool)
    outside[y0:y1, x0:x1] = False
    assert (map_x[outside] == -1).all() and (map_y[outside] == -1).all()


@pytest.mark.parametrize("params", [{}, {"speed": 0}, {"map": "image"},
                                    {"edge": "clamp", "amount": 9}, {"edge": "wrap", "amount": 9},
                                    {"speed": 0, "amount": 30}])
def test_displacement_band_by_band_is_the_whole_frame_at_once(tmp_path, monkeypatch, params):
    """Premultiplying the source and remapping (and making an animated map) band by band gives
    what one band of the whole frame gives, whatever the band's height; the premultiplied
    source holds a band and its reach either side (all rows for wrap)."""
    from keyer.effects import displacement

    if params.get("map") == "image":
        params = {"map": noise_png(tmp_path, 40, 50), "amount": 7}
    src = near_borders()
    src[..., 3] = np.where(np.arange(128) < 110, src[..., 3], 255)    # reaching the right edge
    outs = []
    for band in (1, 7, 64, 1000):
        monkeypatch.setattr(displacement, "BAND", band)
        op = build("displacement", params).bind(Geometry(width=128, height=96, fps=24))
        assert op.moved.shape[0] == min(band, 96)
        rows = 96 if params.get("edge") == "wrap" else min(band, 96) + 2 * op.reach
        assert op.pm.shape[0] == min(rows, 96)
        outs.append([])
        for t in (0.0, 0.3):
            out = np.empty_like(src)
            op(src, out, t)
            outs[-1].append(out)
    for other in outs[:-1]:
        for a, b in zip(other, outs[-1]):
            assert np.array_equal(a, b)


@pytest.mark.parametrize("params", [{}, {"softness": 6}, {"angle": 30, "distance": 40.5},
                                    {"angle": 0, "distance": 70}, {"angle": 200, "distance": 9.7,
                                                                   "shadow_only": True}])
def test_drop_shadow_band_by_band_is_the_whole_box_at_once(monkeypatch, params):
    """Reading the alpha for the shadow band by band gives what one band of the whole frame
    gives (exactly: OpenCV's fixed-point coordinates keep a translation moved by whole rows),
    whatever the band's height; only the shadow's map is frame-sized."""
    from keyer.effects import drop_shadow

    src = near_borders()
    outs = []
    for band in (1, 7, 64, 1000):
        monkeypatch.setattr(drop_shadow, "BAND", band)
        op = build("drop-shadow", params).bind(Geometry(width=128, height=96, fps=24))
        assert op.alpha.shape[0] == min(band + 3, 96) and op.shifted.shape == (96, 128)
        out = np.empty_like(src)
        op(src, out, 0.0)
        outs.append(out)
    assert outs[-1][..., 3].any()
    for other in outs[:-1]:
        assert np.array_equal(other, outs[-1])


# ---------------------------------------------------------------- chain parsing
def test_all_expands_in_natural_order():
    assert [e.name for e in parse_chain("all")] == list(effects.ALL)


def test_chain_with_params_positional_and_quotes(tmp_path):
    chain = parse_chain("displacement=amount=6,multiply=opacity=0.3:fit=stretch,alpha-bevel,"
                        "drop-shadow=distance=8:softness=6,outline=4:red")
    assert [e.name for e in chain] == ["displacement", "multiply", "alpha-bevel", "drop-shadow", "outline"]
    assert chain[0].amount == 6 and chain[1].opacity == 0.3 and chain[1].fit == "stretch"
    assert chain[3].distance == 8 and chain[3].softness == 6
    assert chain[4].width == 4 and chain[4].color == "red"   # positional, in declared order
    odd = tmp_path / "a,b:c.png"
    odd.write_bytes(open(white_png(tmp_path), "rb").read())
    (m,) = parse_chain(f"multiply=texture='{odd}'")
    assert m.texture == str(odd)


@pytest.mark.parametrize("text, fragment", [
    ("drop-shadw", "did you mean 'drop-shadow'?"),
    ("drop-shadow=distnce=3", "did you mean 'distance'?"),
    ("drop-shadow=distance=-2", "distance=-2 is outside 0..1000 px"),
    ("multiply=texture=/no/such.png", "/no/such.png"),
    ("multiply=fit=tiles", "did you mean 'tile'?"),
    ("outline=width=wide", "not a valid float"),
    ("displacement,,add", "empty effect"),
])
def test_chain_errors_name_the_culprit(text, fragment):
    with pytest.raises(UsageProblem) as err:
        parse_chain(text)
    assert fragment in str(err.value)


def test_describe_lists_every_effect_with_ranges():
    rows = {r["name"]: r for r in effects.describe()}
    assert set(rows) == set(effects.REGISTRY) == set(effects.ALL) | {"outline"}
    ds = {p["name"]: p for p in rows["drop-shadow"]["params"]}
    assert ds["distance"]["default"] == 5.0 and ds["distance"]["range"] == "0..1000 px"


# ---------------------------------------------------------------- steady state
ALL_SEVEN = list(effects.ALL) + ["outline"]


@pytest.mark.parametrize("name", ALL_SEVEN)
def test_steady_state_frames_allocate_nothing(name):
    src = square(h=120, w=160, top=30, left=40, size=60)
    src[..., :3] = np.where(src[..., 3:] == 0, 77, src[..., :3])   # colour under alpha 0 too
    op = build(name, {}).bind(Geometry(width=160, height=120, fps=24))
    out = np.empty_like(src)
    for k in range(3):
        op(src, out, k / 24)
    tracemalloc.start()
    base, _ = tracemalloc.get_traced_memory()
    for k in range(3, 13):
        op(src, out, k / 24)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    # the peak over 10 frames counts temporaries too, not just what is kept
    assert peak - base < 4096, f"{name} allocated up to {peak - base} bytes in steady state"


# ---------------------------------------------------------------- subject box (work only where alpha is)


def test_subject_box_is_the_box_of_nonzero_alpha():
    from keyer.effects._composite import subject_box

    rng = np.random.default_rng(7)
    for _ in range(200):
        h, w = (int(v) for v in rng.integers(1, 90, 2))
        img = rng.integers(0, 256, (h, w, 4)).astype(np.uint8)
        img[..., 3] *= rng.random((h, w)) < rng.random() * 0.05
        ys, xs = np.nonzero(img[..., 3])
        expect = (ys.min(), ys.max() + 1, xs.min(), xs.max() + 1) if len(ys) else (0, 0, 0, 0)
        assert subject_box(img) == expect


def near_borders(h=96, w=128, seed=3):
    """Subjects in the top-right corner, on the right and bottom edges and ragged in the middle,
    with colour under alpha 0; the box of non-zero alpha leaves the left 20 columns out."""
    rng = np.random.default_rng(seed)
    img = rng.integers(0, 256, (h, w, 4)).astype(np.uint8)
    img[..., 3] = 0
    img[0:10, w - 12:w, 3] = 255                # corner
    img[40:48, w - 3:w, 3] = 200                # right edge, soft
    img[h - 2:h, 60:72, 3] = 255                # bottom edge
    img[30:50, 20:60, 3] = rng.integers(0, 256, (20, 40))   # ragged
    return img


BOX_CASES = [(n, {}) for n in ALL_SEVEN] + [
    ("displacement", {"edge": "clamp"}), ("displacement", {"amount": 12, "speed": 0}), ("drop-shadow", {"softness": 4, "distance": 9}),
    ("drop-shadow", {"shadow_only": True, "angle": 300}), ("outline", {"width": 3, "softness": 0}),
    ("alpha-bevel", {"thickness": 10}), ("surface-bevel", {"depth": 20, "angle": 90})]


@pytest.mark.parametrize("name, params", BOX_CASES)
@pytest.mark.parametrize("flip", [False, True], ids=["right", "left"])
def test_box_path_equals_full_frame_path(name, params, flip):
    src = near_borders()
    if flip:
        src = np.ascontiguousarray(src[:, ::-1])
    # two faint pixels at the far corners make the box the whole frame: the full-frame path
    col = -1 if flip else 0
    full = src.copy()
    full[0, col, 3] = full[-1, col, 3] = 1
    a, b = apply(name, src, t=0.2, **params), apply(name, full, t=0.2, **params)
    far = np.ones(src.shape[:2], bool)           # away from those two pixels' reach
    cols = slice(-24, None) if flip else slice(0, 24)
    far[:24, cols] = far[-24:, cols] = False
    assert np.array_equal(a[far, 3], b[far, 3])
    seen = far & (a[..., 3] > 0)
    assert np.array_equal(a[seen], b[seen])
    if name not in ("multiply", "add"):           # those copy unseen colour far from the subject
        assert np.array_equal(a[far], b[far])


@pytest.mark.parametrize("edge", ["wrap", "clamp"])
def test_displacement_edge_rule_does_not_matter_far_from_the_edges(edge):
    src = square(h=64, w=80, top=20, left=24, size=24)
    src[24:40, 30:44, 3] = 90
    assert np.array_equal(apply("displacement", src, t=0.3, edge=edge),
                          apply("displacement", src, t=0.3))


@pytest.mark.parametrize("name", ALL_SEVEN)
def test_empty_frame_gives_a_transparent_frame_and_overwrites_the_buffer(name):
    src = canvas(20, 30)
    src[..., :3] = (40, 90, 50)                   # despilled screen colour under alpha 0
    op = build(name, {}).bind(Geometry(width=30, height=20, fps=24))
    out = np.full_like(src, 0xAB)                 # a reused buffer holds an older frame
    op(src, out, 0.0)
    assert not out[..., 3].any()
    assert np.array_equal(out, src) or not out.any()


@pytest.mark.parametrize("name", ALL_SEVEN)
def test_a_smaller_subject_after_a_bigger_one_leaves_nothing_behind(name):
    big = square(h=64, w=64, top=4, left=4, size=56)
    small = square(h=64, w=64, top=40, left=44, size=10, rgb=(30, 200, 90))
    op = build(name, {}).bind(Geometry(width=64, height=64, fps=24))
    out = np.empty_like(big)
    op(big, out, 0.0)
    op(small, out, 0.0)
    assert np.array_equal(out, apply(name, small))


def test_paper_texture_is_made_once_per_user_and_read_back(tmp_path, monkeypatch):
    from keyer.effects import textures

    monkeypatch.setenv("KEYER_CACHE_DIR", str(tmp_path / "cache"))
    textures.paper_grain.cache_clear()
    made = textures.paper_grain()
    (path,) = (tmp_path / "cache" / "textures").glob("paper-512-42-*.npy")
    assert (np.load(path) == made).all() and (made == textures._make_paper(512, 42)).all()
    marked = made.copy()
    marked[0, 0] = (1, 2, 3)
    np.save(path, marked)                      # a later job reads the file, not the recipe
    textures.paper_grain.cache_clear()
    assert textures.paper_grain()[0, 0].tolist() == [1, 2, 3]
    textures.paper_grain.cache_clear()


def test_paper_texture_without_a_writable_cache(tmp_path, monkeypatch):
    from keyer.effects import textures

    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x")
    monkeypatch.setenv("KEYER_CACHE_DIR", str(blocker))
    textures.paper_grain.cache_clear()
    assert (textures.paper_grain() == textures._make_paper(512, 42)).all()
    textures.paper_grain.cache_clear()


# ---------------------------------------------------------------- a chain passes its boxes on


def moving_subject(k, h=72, w=96, zero_under=True):
    """Frame ``k`` of a soft, textured disc that moves and changes size; frame 3 is empty and
    frame 5 touches the right and bottom edges. Colour is 0 under alpha 0 (as the key leaves
    it) or, with ``zero_under`` False, noise there too."""
    import cv2

    rng = np.random.default_rng(k)
    img = rng.integers(0, 256, (h, w, 4)).astype(np.uint8)
    a = np.zeros((h, w), np.uint8)
    if k != 3:
        centre = (w - 6, h - 5) if k == 5 else (18 + 9 * k % 60, 20 + 7 * k % 30)
        cv2.circle(a, centre, 6 + 3 * (k % 4), 255, -1, lineType=cv2.LINE_AA)
    img[..., 3] = a
    if zero_under:
        img[a == 0] = 0
    return img


CHAINS = ["all", "displacement,multiply,add,surface-bevel,alpha-bevel,drop-shadow,outline",
          "drop-shadow=shadow-only=1,multiply,outline=width=3", "displacement=amount=0,add",
          "outline=width=4,alpha-bevel",
          "drop-shadow=distance=20:opacity=1,alpha-bevel,drop-shadow=distance=30:softness=6",
          "displacement=edge=clamp,surface-bevel"]


@pytest.mark.parametrize("chain", CHAINS)
def test_a_chain_passing_its_boxes_on_writes_what_each_effect_alone_writes(chain):
    """EffectsStage tells each effect the subject's box and where its input and its output
    buffer's old content are all zero, so it copies only there; each effect called on its own
    (no boxes: a full search and full-frame copies into a buffer of garbage) is the reference.
    The subject moves, vanishes and comes back, so stale content from earlier frames would show."""
    from fractions import Fraction

    from keyer.frame import Frame
    from keyer.stages import EffectsStage

    h, w = 72, 96
    g = Geometry(width=w, height=h, fps=24)
    stage = EffectsStage([s.bind(g) for s in parse_chain(chain)], w, h, ring=2)
    alone = [s.bind(g) for s in parse_chain(chain)]
    rng = np.random.default_rng(1)
    for k in range(12):
        zero_under = k % 4 != 1
        src = moving_subject(k, h, w, zero_under)
        ys, xs = np.nonzero(src[..., 3])
        extent = ((ys.min(), ys.max() + 1, xs.min(), xs.max() + 1) if len(ys) else (0, 0, 0, 0))
        frame = Frame(k, k, 1, Fraction(1, 24), rgba=src.copy(), extent=extent if zero_under else None)
        got = stage(frame).rgba
        want = src
        for op in alone:
            out = rng.integers(0, 256, src.shape).astype(np.uint8)
            op(want, out, k / 24)
            want = out
        assert np.array_equal(got, want), f"frame {k}: {np.count_nonzero(got != want)} bytes differ"
        if frame.extent is None:     # unknown: only from input of unknown extent
            assert not zero_under
            continue
        y0, y1, x0, x1 = frame.extent
        beyond = np.ones((h, w), bool)
        beyond[y0:y1, x0:x1] = False
        assert not got[beyond].any(), f"frame {k}: non-zero outside the extent noted"
    stage.close()         # puts OpenCV's thread count back for the tests that follow


@pytest.mark.parametrize("chain", CHAINS)
def test_a_chain_converting_for_the_encoder_writes_the_same_and_empties_the_keys_buffer(chain):
    """With ``convert`` (the sink's: here a copy) the stage ping-pongs between its one buffer
    and the key's handed-over one: each frame converted is what the ring-and-scratch stage
    makes, and the key's buffer comes back all zero once an effect wrote it (untouched by a
    chain of one), so the key's own record of where it is zero still holds."""
    from fractions import Fraction

    from keyer.frame import Frame
    from keyer.stages import EffectsStage

    h, w = 72, 96
    g = Geometry(width=w, height=h, fps=24)
    converted = []
    stage = EffectsStage([s.bind(g) for s in parse_chain(chain)], w, h, ring=2,
                         convert=lambda rgba: converted.append(rgba.copy()) or "video")
    reference = EffectsStage([s.bind(g) for s in parse_chain(chain)], w, h, ring=2)
    assert len(stage.ring.buffers) == 1 and not stage.scratch
    keys = [np.zeros((h, w, 4), np.uint8) for _ in range(2)]   # the key's ring
    for k in range(12):
        zero_under = k % 4 != 1
        src = moving_subject(k, h, w, zero_under)
        ys, xs = np.nonzero(src[..., 3])
        extent = ((ys.min(), ys.max() + 1, xs.min(), xs.max() + 1) if len(ys) else (0, 0, 0, 0))
        handed = keys[k % 2]
        assert not handed.any(), f"frame {k}: the key's buffer was not given back empty"
        handed[...] = src
        frame = Frame(k, k, 1, Fraction(1, 24), rgba=handed, extent=extent if zero_under else None)
        stage(frame)
        assert frame.video == "video" and frame.rgba is None
        want = reference(Frame(k, k, 1, Fraction(1, 24), rgba=src.copy(),
                               extent=extent if zero_under else None)).rgba
        assert np.array_equal(converted[-1], want), f"frame {k}: differs from the ring's"
        if len(stage.ops) == 1:
            assert np.array_equal(handed, src)   # read, never written
            handed[...] = 0                      # the key would clear its own picture
    stage.close()
    reference.close()


def test_the_subject_is_searched_for_within_a_box():
    from keyer.effects._composite import subject_box

    img = moving_subject(2)
    ys, xs = np.nonzero(img[..., 3])
    whole = (ys.min(), ys.max() + 1, xs.min(), xs.max() + 1)
    assert subject_box(img) == whole
    assert subject_box(img, (0, 72, 0, 96)) == whole
    assert subject_box(img, (whole[0] + 2, 72, 0, whole[3] - 1)) == (whole[0] + 2, whole[1], whole[2], whole[3] - 1)
    assert subject_box(img, (0, 0, 0, 0)) == (0, 0, 0, 0)
    assert subject_box(img, (0, whole[0], 0, 96)) == (0, 0, 0, 0)


def test_the_effects_share_one_scratch_frame_and_one_buffer_of_per_frame_arrays():
    """A chain ping-pongs between the ring's buffer and one scratch frame, and the effects'
    per-frame arrays are views of one buffer as large as the largest effect's."""
    from keyer.stages import EffectsStage

    h, w = 72, 96
    g = Geometry(width=w, height=h, fps=24)
    ops = [s.bind(g) for s in parse_chain("all")]
    own = [sum(-(-getattr(op, n).nbytes // 64) * 64 for n in getattr(op, "scratch_arrays", ()))
           for op in ops]
    stage = EffectsStage(ops, w, h, ring=2)
    assert len(stage.scratch) == 1
    assert stage.shared.nbytes == max(own) < sum(own)
    for op in ops:
        for n in getattr(op, "scratch_arrays", ()):
            a = getattr(op, n)
            assert np.shares_memory(a, stage.shared) and a.flags.c_contiguous and a.flags.aligned
    stage.close()
    single = EffectsStage([build("drop-shadow", {}).bind(g)], w, h, ring=2)
    assert single.scratch == []
    single.close()
    assert EffectsStage([build("multiply", {}).bind(g)], w, h, ring=2).shared is None


def test_effects_stage_runs_opencv_in_one_thread_while_open_and_restores_it():
    import cv2
    from fractions import Fraction

    from keyer.frame import Frame
    from keyer.stages import EffectsStage

    seen = []

    class Probe:
        def __call__(self, src, out, t, boxes=None):
            seen.append(cv2.getNumThreads())
            np.copyto(out, src)
            boxes.out = None

        def close(self):
            pass

    before = cv2.getNumThreads()
    cv2.setNumThreads(2)
    try:
        stage = EffectsStage([Probe()], 8, 6, ring=2)
        stage(Frame(0, 0, 1, Fraction(1, 24), rgba=canvas(6, 8)))
        stage.close()
        stage.close()                       # a second close changes nothing
        assert seen == [1] and cv2.getNumThreads() == 2
    finally:
        cv2.setNumThreads(before)
