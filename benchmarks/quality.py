"""make bench-quality: keyer's default matte against exact ground truth, beside FFmpeg tuned.

The hard set (``samples.make_samples.render_hard_frame``; issue 25): on green and on blue, a
~50 % veil over an unevenly lit screen, a fast (motion-blurred) figure with screen-coloured
patches and a visor reflecting the screen, a real gap (an arm looped to the hip), and flyaway
hair; encoded as H.264 4:2:0 (crf 23). Each clip is keyed through the pipeline's key stages
(planar, and the RGBA path) with the defaults, and through FFmpeg's ``chromakey`` (PyAV's
libavfilter; ``despill`` after it changes colour, not alpha, so it is left out of the alpha
scores) grid-tuned against the ground truth: the best similarity/blend pair *per score* (the
anchor at its strongest on each). Scores, per scored frame then averaged (alpha in 0..255):

* ``mae``: mean absolute alpha error over the frame;
* ``edge``: the same over the edge band (true alpha fractional, grown by 2 px);
* ``holes``: pixels of the solid interior (opaque in the truth, 3 px from any edge; the
  screen-coloured details included) keyed below 0.9;
* ``specks``: pixels of the screen (alpha 0, 3 px from any edge) keyed at 0.1 or more;
* ``veil``: |mean keyed alpha - mean true alpha| / mean true alpha over the veil's body;
* ``gap``: mean keyed alpha in the screen seen through the arm's loop (0 is right);
* ``hair``: |mean keyed alpha - mean true alpha| / mean true alpha over the flyaway strands'
  pixels outside the head (1 px, 60 %: what the strands keep of their partial alpha);
* ``spill``: the screen's primary channel's mean excess over the larger other channel in the
  keyed colour, near the subject's edge (``spill``; FFmpeg's with ``despill`` after it).

``python benchmarks/quality.py [--size 1280x720] [--frames 24] [--veil R,G,B]`` prints the table
and writes it to ``benchmarks/results/quality-<time>.json``. The set can be varied, to see that
the key does not fit only it (docs/quality.md, "The set varied"): ``--veil`` renders the veil in
another colour (the set's is a warm white, ``samples.make_samples.VEIL``: how far a key that
does not know the veil's colour is off depends on it), ``--veil-alpha`` at another opacity
(smoke, a dense veil), ``--suit`` the suit in another colour, ``--light`` the light more or less
uneven, ``--brightness`` the screen darker or brighter, ``--noise`` more or less noise.
``tests/test_quality.py`` runs the same scores on a smaller set.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import av
import av.filter
import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from keyer.settings import KeySettings  # noqa: E402
from samples.make_samples import SCREENS, _hard, write_clip  # noqa: E402

FPS = 24
# FFmpeg chromakey's grid: similarity x blend (its defaults are 0.01 / 0)
SIMILARITY = (0.02, 0.04, 0.06, 0.08, 0.10, 0.13, 0.16, 0.20, 0.25, 0.30)
BLEND = (0.0, 0.02, 0.05, 0.08, 0.12, 0.16, 0.22, 0.30)
SCORES = ("mae", "edge", "holes", "specks", "veil", "gap", "hair")
PRIMARY = {"green": 1, "blue": 2}


def make_hard_clip(path: Path, kind: str, width: int, height: int, frames: int,
                   wanted) -> dict[int, tuple[np.ndarray, dict]]:
    """Write the hard clip on ``kind`` (H.264 4:2:0, crf 23); return the truth (alpha and
    regions) of the ``wanted`` frames."""
    write_clip(path, f"hard-{kind}", width, height, FPS, seconds=frames / FPS)
    truth = {}
    for i in wanted:
        _, alpha, regions = _hard(width, height, i, FPS, kind)
        truth[i] = (alpha, regions)
    return truth


def spill(keyed: dict[int, np.ndarray], truth: dict, kind: str) -> float:
    """Residual spill of keyed RGBA frames: the screen's primary channel's mean excess over the
    larger other channel (levels, 0 where it is not larger), over the pixels keyed at 0.1 or
    more within 4 px of the subject's true edge (where spill is)."""
    p = PRIMARY[kind]
    vals = []
    for i, (gt, _) in truth.items():
        rgba = keyed[i].astype(np.float32)
        others = np.maximum(*[rgba[..., c] for c in (0, 1, 2) if c != p])
        excess = np.maximum(rgba[..., p] - others, 0)
        edge = (gt > 0) & (gt < 255)
        near = cv2.dilate(edge.astype(np.uint8), np.ones((9, 9), np.uint8)) > 0
        vals.append(excess[near & (rgba[..., 3] >= 26)].mean())
    return float(np.mean(vals))


def score(mattes: dict[int, np.ndarray], truth: dict) -> dict[str, float]:
    """The scores above, averaged over the frames of ``truth``; ``mattes`` are alpha planes or
    RGBA frames."""
    rows = []
    for i, (gt, reg) in truth.items():
        est = (mattes[i] if mattes[i].ndim == 2 else mattes[i][..., 3]).astype(np.float32)
        g = gt.astype(np.float32)
        err = np.abs(est - g)
        band = cv2.dilate(((gt > 0) & (gt < 255)).astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
        veil = reg["veil"]
        rows.append({
            "mae": float(err.mean()),
            "edge": float(err[band].mean()),
            "holes": float((est[reg["solid"]] < 0.9 * 255).sum()),
            "specks": float((est[reg["screen"]] >= 0.1 * 255).sum()),
            "veil": float(abs(est[veil].mean() - g[veil].mean()) / g[veil].mean()),
            "gap": float(est[reg["gap"]].mean() / 255.0) if reg["gap"].any() else 0.0,
            "hair": float(abs(est[reg["hair"]].mean() - g[reg["hair"]].mean())
                          / g[reg["hair"]].mean()),
        })
    return {k: float(np.mean([r[k] for r in rows])) for k in SCORES}


def keyer_mattes(path, wanted, settings: KeySettings | None = None,
                 planar: bool = True, rgba: bool = False) -> dict[int, np.ndarray]:
    """Mattes of the planar key stage (its alpha plane) or of the RGBA one, for frames
    ``wanted``; with ``rgba``, the keyed RGBA frames (the planar key writing RGBA)."""
    from keyer.colour import plane_array
    from keyer.frame import Frame
    from keyer.probe import probe
    from keyer.stages import KeyStage, PlanarKeyStage

    settings = settings or KeySettings()
    info = probe(path)
    if planar:
        stage = PlanarKeyStage(settings, info.width, info.height, None if rgba else "yuva420p",
                               None)
    else:
        stage = KeyStage(settings, info.width, info.height, 0, 0, ring=1)
    out = {}
    with av.open(str(path)) as c:
        for i, f in enumerate(c.decode(video=0)):
            keyed = stage(Frame(index=i, pts=i, duration=1, time_base=info.time_base, source=f))
            if i in wanted:
                if rgba or not planar:
                    out[i] = keyed.rgba.copy() if rgba else keyed.rgba[..., 3].copy()
                else:
                    out[i] = plane_array(keyed.video.planes[3], np.uint8, info.width).copy()
    return out


def ffmpeg_mattes(path, wanted, colour: tuple, grid, despill: str | None = None
                  ) -> dict[tuple, dict[int, np.ndarray]]:
    """FFmpeg's ``chromakey`` mattes of frames ``wanted`` for every (similarity, blend) of
    ``grid``, keyed on ``colour`` (R, G, B); with ``despill`` (its ``type``: green/blue), the
    RGBA frames of ``chromakey`` then ``despill``."""
    hexc = "0x%02X%02X%02X" % tuple(int(round(v)) for v in colour)
    with av.open(str(path)) as c:
        frames = [(i, f) for i, f in enumerate(c.decode(video=0)) if i in wanted]
    out = {}
    for sim, blend in grid:
        mattes = {}
        for i, f in frames:
            g = av.filter.Graph()
            chain = [g.add_buffer(template=None, width=f.width, height=f.height,
                                  format=f.format.name, time_base="1/24"),
                     g.add("chromakey", f"color={hexc}:similarity={sim}:blend={blend}")]
            if despill:
                chain.append(g.add("despill", f"type={despill}"))
            chain += [g.add("format", "rgba"), g.add("buffersink")]
            for a, b in zip(chain, chain[1:]):
                a.link_to(b)
            g.configure()
            g.push(f)
            rgba = g.pull().to_ndarray()
            mattes[i] = rgba.copy() if despill else rgba[..., 3].copy()
        out[(sim, blend)] = mattes
    return out


def ffmpeg_tuned(path, truth, kind: str, grid=None) -> tuple[dict[str, float], dict[str, tuple]]:
    """FFmpeg chromakey tuned against the truth: per score, the best over the grid (lower is
    better; ``veil`` and ``gap`` too). Returns (scores, the setting that gave each)."""
    grid = grid or [(s, b) for s in SIMILARITY for b in BLEND]
    runs = {k: score(m, truth) for k, m in ffmpeg_mattes(path, truth, SCREENS[kind], grid).items()}
    best, where = {}, {}
    for name in SCORES:
        k = min(runs, key=lambda k: runs[k][name])
        best[name], where[name] = runs[k][name], k
    return best, where


def table(rows: list[dict]) -> str:
    """A markdown table of ``rows`` (clip, method, scores)."""
    head = ("| clip | method | MAE | edge | holes | specks | veil err | gap alpha | hair err "
            "| spill |")
    lines = [head, "|" + "---|" * 10]
    for r in rows:
        sp = f"{r['spill']:.2f}" if r.get("spill") is not None else "n/a"
        lines.append(f"| {r['clip']} | {r['method']} | {r['mae']:.2f} | {r['edge']:.1f} | "
                     f"{r['holes']:.0f} | {r['specks']:.0f} | {100 * r['veil']:.1f} % | "
                     f"{r['gap']:.3f} | {100 * r['hair']:.0f} % | {sp} |")
    return "\n".join(lines)


def measure(path, kind: str, truth: dict, settings: KeySettings | None = None) -> list[dict]:
    """The table's rows for one clip: keyer (planar and RGBA paths, ``settings`` or the
    defaults) and FFmpeg tuned (per score; its spill at the best-MAE setting, with despill)."""
    rows = []
    for planar in (True, False):
        r = score(keyer_mattes(path, truth, settings, planar=planar), truth)
        sp = spill(keyer_mattes(path, truth, settings, planar=True, rgba=True), truth, kind) \
            if planar else None
        rows.append({"clip": kind, "method": f"keyer {'planar' if planar else 'RGBA'}", **r,
                     "spill": sp})
    best, where = ffmpeg_tuned(path, truth, kind)
    keyed = ffmpeg_mattes(path, truth, SCREENS[kind], [where["mae"]], despill=kind)
    rows.append({"clip": kind, "method": "FFmpeg chromakey+despill, tuned", **best,
                 "spill": spill(keyed[where["mae"]], truth, kind),
                 "settings": {k: list(v) for k, v in where.items()}})
    return rows


def main(argv=None) -> int:
    import tempfile

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--size", default="1280x720")
    ap.add_argument("--frames", type=int, default=24)
    ap.add_argument("--step", type=int, default=4, help="score every STEP-th frame")
    ap.add_argument("--veil", help="the veil's colour, R,G,B (0..255); default the set's")
    ap.add_argument("--veil-alpha", type=float, help="the veil's opacity, 0..1 (the set's: 0.5)")
    ap.add_argument("--suit", help="the suit's colour, R,G,B (the set's: 150,40,50)")
    ap.add_argument("--light", type=float, help="how uneven the light is, 1 = the set's "
                    "(-25..+20 %%), 2 = twice that")
    ap.add_argument("--brightness", type=float, help="the screen's brightness (the set's: 1)")
    ap.add_argument("--noise", type=float, help="the sensor noise's sigma (the set's: 2.5)")
    ap.add_argument("--shadow", type=float, help="the depth of a shadow the figure casts on the "
                    "screen, 0..0.9 (the set's: none)")
    ap.add_argument("--light-step", metavar="GAIN@FRAME", help="the screen's light times GAIN "
                    "from frame FRAME on, e.g. 0.8@4 (a lamp turned down)")
    ap.add_argument("--light-fade", metavar="RATE@FRAME", help="the screen's light times RATE "
                    "more each frame from frame FRAME on, e.g. 0.9@4 (a fade)")
    a = ap.parse_args(argv)
    try:
        width, height = (int(v) for v in a.size.lower().split("x"))
    except ValueError:
        ap.error(f"--size {a.size!r}: use WIDTHxHEIGHT, e.g. 1280x720")
    if width < 64 or height < 64 or width % 2 or height % 2 or a.frames < a.step or a.step < 1:
        ap.error("--size: even, at least 64x64; --frames at least --step (1 or more)")
    import samples.make_samples as make_samples

    def colour(option, text):
        try:
            rgb = tuple(float(v) for v in text.split(","))
        except ValueError:
            rgb = ()
        if len(rgb) != 3 or not all(0 <= v <= 255 for v in rgb):
            ap.error(f"{option} {text!r}: use R,G,B, each 0..255, e.g. 232,232,232")
        return rgb

    varied = {}
    if a.veil:
        varied["VEIL"] = colour("--veil", a.veil)
    if a.suit:
        varied["SUIT"] = colour("--suit", a.suit)
    for option, name, lo, hi in (("veil_alpha", "VEIL_ALPHA", 0.0, 1.0),
                                 ("light", "LIGHT", 0.0, 3.0),
                                 ("brightness", "BRIGHTNESS", 0.2, 1.5),
                                 ("noise", "NOISE", 0.0, 30.0),
                                 ("shadow", "SHADOW", 0.0, 0.9)):
        value = getattr(a, option)
        if value is not None:
            if not lo <= value <= hi:
                ap.error(f"--{option.replace('_', '-')} {value}: use {lo:g}..{hi:g}")
            varied[name] = value
    for option, name, text in (("--light-step", "LIGHT_STEP", a.light_step),
                               ("--light-fade", "LIGHT_FADE", a.light_fade)):
        if text:
            try:
                gain, frame = text.split("@")
                varied[name] = (float(gain), int(frame))
            except ValueError:
                ap.error(f"{option} {text!r}: use GAIN@FRAME, e.g. 0.8@4")
            if not (0.1 <= varied[name][0] <= 3.0 and varied[name][1] >= 0):
                ap.error(f"{option} {text!r}: GAIN 0.1..3, FRAME 0 or more")
    for name, value in varied.items():
        setattr(make_samples, name, value)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for kind in ("green", "blue"):
            path = Path(tmp) / f"hard-{kind}.mp4"
            wanted = range(a.step - 1, a.frames, a.step)
            truth = make_hard_clip(path, kind, width, height, a.frames, wanted)
            rows += measure(path, kind, truth)
    VEIL = make_samples.VEIL
    print(f"hard set, {width}x{height}, {a.frames} frames, every {a.step}th scored, veil {VEIL}"
          + "".join(f", {k.lower()} {v}" for k, v in varied.items() if k != "VEIL"))
    print(table(rows))
    from benchmarks import result_path

    out = result_path("quality")
    out.write_text(json.dumps({"size": [width, height], "frames": a.frames, "veil": VEIL,
                               "varied": {k.lower(): v for k, v in varied.items()},
                               "rows": rows,
                               "time": time.strftime("%Y-%m-%dT%H:%M:%S")}, indent=1))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
