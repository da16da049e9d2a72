"""What a job asks for: every setting declared once, with its type, default, range and help.

``KeySettings`` (the chroma key), ``EncodeSettings`` (the encoder) and ``Job`` (one input, one
output, the effects and the limits) are frozen dataclasses whose fields are declared with
``keyer.params.param``. ``keyer run``'s options, ``--config`` keys and the README's option table
are generated from these declarations (``keyer.cli.declared_options``, ``keyer.docs``), and each
class checks its values against them when it is made, so the library and the command line accept
exactly the same values.
"""
from __future__ import annotations

from dataclasses import dataclass, field, fields
from fractions import Fraction
from pathlib import Path
from typing import Any

from keyer.errors import UsageProblem
from keyer.formats import PRESETS
from keyer.params import param, validate
from keyer.platforms import PROFILES

MIN_BUDGET = 64 * 1024 * 1024


def key_color(text: Any) -> str:
    """``--key``: auto, green, blue or #RRGGBB (checked, kept as written)."""
    from keyer.keying import parse_key_color

    parse_key_color(text)
    return str(text)


def frame_rate(value: Any) -> Fraction:
    """``--posterize-time``: 12, 12.5 or 30000/1001, as an exact Fraction."""
    if isinstance(value, Fraction):
        return value
    try:
        return Fraction(str(value)).limit_denominator(1001000)
    except (ValueError, ZeroDivisionError):
        raise UsageProblem(f"{value!r} is not a frame rate (try 12 or 30000/1001)") from None


def byte_size(value: Any) -> int:
    """``--memory-budget``: 800M, 1.5G or a byte count."""
    from keyer.memory import parse_size

    if isinstance(value, int):
        return value
    try:
        return parse_size(value)
    except ValueError as exc:
        raise UsageProblem(str(exc)) from None


def effect_chain(value: Any) -> tuple:
    """``--effects``: a chain in FFmpeg filter syntax (or a list of links), parsed and checked."""
    if isinstance(value, tuple):
        return value
    if isinstance(value, list):
        value = ",".join(map(str, value))
    if not str(value).strip():
        return ()
    from keyer.effects.base import parse_chain   # (keyer.effects once installed under keyer)

    try:
        return tuple(parse_chain(str(value)))
    except UsageProblem as exc:
        raise UsageProblem(f"--effects: {exc}") from None


@dataclass(frozen=True, kw_only=True)
class KeySettings:
    """Chroma-key controls. Ratios are relative to the local screen: 1 = screen, 0 = neutral."""

    color: str = param("auto", option="--key", parse=key_color, metavar="auto|green|blue|#RRGGBB",
                       help="Screen colour: auto, green, blue or #RRGGBB.")
    similarity: float = param(0.06, lo=0, hi=1, help="How far from the screen (0..1, as a ratio "
                              "of the screen's own saturation) is still fully transparent.")
    softness: float = param(0.88, lo=0.01, hi=1, help="Width of the soft edge (0..1) below that.")
    tolerance: float = param(0.25, lo=0, hi=1, help="Colours whose colour difference is up to "
                             "this share of the screen's (0..1) still key fully opaque: light "
                             "spill on a solid subject. Above it the soft edge runs as "
                             "--similarity and --softness set it (a 50% veil keys at 50%).")
    spill: float = param(1.0, lo=0, hi=1, help="Spill suppression strength (0 = off): edge "
                         "pixels un-mixed from the local screen colour, then the screen channel "
                         "limited.")
    spill_limit: str = param("max", choices=("max", "average", "min"),
                             help="Limit the screen channel to the max (keeps yellows yellow), "
                                  "average or min of the other two.")
    balance: float = param(1.0, lo=0, hi=1, help="Weight of the larger other channel's excess "
                           "over the screen in the colour difference (1 = max, 0 = min).")
    clip_black: float = param(0.0, lo=0, hi=1, help="Alpha below this becomes 0.")
    clip_white: float = param(1.0, lo=0, hi=1, help="Alpha above this becomes 1.")
    shrink: float = param(0.0, lo=0, hi=100, unit="px", help="Erode the matte by this many px.")
    feather: float = param(0.0, lo=0, hi=100, unit="px", help="Blur the matte edge by this many px.")
    denoise: int = param(2, lo=0, hi=10, unit="px", help="Radius of the luma-guided filter that "
                         "steadies noise and sharpens edges (0 = off).")
    local: bool = param(True, option="--global-key", negate=True,
                        help="Key against one screen colour instead of a local estimate.")
    fill_holes: float = param(0.4, lo=0, hi=100, unit="% of the picture",
                              help="Core matte: transparent islands enclosed by confidently "
                                   "opaque subject (alpha >= 0.9) up to this area are made solid, "
                                   "keeping their colour (screen-coloured details, reflections); "
                                   "larger ones (the gap between an arm and the body) stay open. "
                                   "0 = off.")
    faint: bool = param(True, option="--no-faint", negate=True,
                        help="Cut faint coverage at --similarity everywhere, as on the screen's "
                             "noise. By default coverage whose luma differs from the screen's "
                             "there (beyond the screen's own noise) keys as it is: smoke, hair "
                             "tips, the tails of motion blur.")
    keep_shadows: bool = param(False, help="Key shadows cast on the screen as the colour "
                               "difference sees them (a 35% shadow as 35% black). By default "
                               "a wide shade of the screen, its luma fallen as a mix with black "
                               "does, keys as screen; so does black smoke.")

    def __post_init__(self) -> None:
        key_color(self.color)
        validate(self)
        if self.clip_white <= self.clip_black:
            raise UsageProblem(f"--clip-white ({self.clip_white:g}) must be above "
                               f"--clip-black ({self.clip_black:g})")

    def summary(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass(frozen=True)
class EncodeSettings:
    """How the output is encoded (the format itself comes from the output's extension)."""

    crf: int | None = param(None, lo=0, hi=63, help="Quality (lower = better): VP9 default 32, "
                            "H.264 default 20; not for ProRes/PNG.")
    preset: str = param("fast", choices=PRESETS, help="Encoder speed/quality trade-off.")
    audio: bool = param(True, option="--no-audio", negate=True, help="Drop the audio track.")
    background: str = param("#ffffff", metavar="#RRGGBB|IMAGE",
                            help="For .mp4 (no alpha): colour #RRGGBB or an image to composite over.")
    threads: int | None = param(None, lo=0, hi=64, help="Encoder threads, as FFmpeg's -threads "
                                "(0 = FFmpeg's own choice). Default: all cores; with --effects "
                                "and --preset fast VP9/H.264, 1 on 2 cores and all but one on more.")

    def __post_init__(self) -> None:
        validate(self)


@dataclass(frozen=True, kw_only=True)
class Job:
    """Everything one keying job needs; built (and validated) before anything is decoded."""

    input: Path
    output: str
    key: KeySettings = field(default_factory=KeySettings)
    encode: EncodeSettings = field(default_factory=EncodeSettings)
    effects: tuple = param((), parse=effect_chain, metavar="CHAIN",
                           help="Sticker effects in FFmpeg filter syntax, e.g. "
                                "\"displacement=amount=6,alpha-bevel\"; 'all' = the six sticker "
                                "effects. See `keyer effects`.")
    posterize_fps: Fraction | None = param(None, lo=0.001, hi=1000, unit="fps", parse=frame_rate,
                                           option="--posterize-time", metavar="FPS",
                                           help="Show a new image only this many times per "
                                                "second (e.g. 12).")
    pad: int = param(0, lo=0, hi=2000, unit="px", help="Grow the canvas by this many px on each "
                     "side (room for shadows and outlines).")
    overwrite: bool = param(False, short="-y", help="Replace an existing output.")
    gc_every: int = param(10, lo=0, help="Sample memory and run gc.collect() every N frames "
                          "(0 = never).")
    memory_budget: int | None = param(None, parse=byte_size, metavar="SIZE",
                                      help="Memory budget, e.g. 800M or 1.5G (default: the "
                                           "container's cgroup limit, if any). Warns at 75%, "
                                           "critical at 90%; a job whose estimate exceeds it is "
                                           "refused.")
    abort_over_budget: bool = param(False, help="Stop cleanly (exit 6) at 90% of the budget "
                                    "instead of risking the OOM killer.")
    fit: bool = param(False, help="Scale down to the largest size within the limits and budget.")
    max_megapixels: float = param(24.0, lo=0.001, envvar="KEYER_MAX_MEGAPIXELS",
                                  help="Refuse (or --fit) larger frames.")
    max_duration: float | None = param(None, lo=0.001, unit="s", envvar="KEYER_MAX_DURATION",
                                       help="Refuse inputs whose declared length is longer, and "
                                            "stop one that runs longer.")
    platform: str | None = param(None, option="--for", choices=tuple(PROFILES),
                                 help="Make a sticker this platform accepts: its format, canvas, "
                                      "length, frame rate and byte limit (see `keyer platforms`).")
    too_long: str = param("trim", choices=("trim", "speed", "error"),
                          help="With --for, a clip longer than the platform allows is cut at "
                               "the limit, played faster to fit, or refused.")
    extras: bool = param(False, help="With --for, also write the pack's images beside the "
                         "sticker: WhatsApp's tray icon, Telegram's thumbnail, LINE's main and "
                         "tab images.")

    def __post_init__(self) -> None:
        object.__setattr__(self, "input", Path(self.input))
        object.__setattr__(self, "effects", effect_chain(self.effects)
                           if isinstance(self.effects, (str, list)) else tuple(self.effects))
        if self.posterize_fps is not None:
            object.__setattr__(self, "posterize_fps", frame_rate(self.posterize_fps))
        validate(self)
        if self.memory_budget is not None and self.memory_budget < MIN_BUDGET:
            raise UsageProblem("--memory-budget: at least 64M")

    def summary(self) -> dict:
        return {
            "key": self.key.summary(),
            "effects": [getattr(e, "name", type(e).__name__) for e in self.effects],
            "posterize_fps": float(self.posterize_fps) if self.posterize_fps else None,
            "crf": self.encode.crf, "preset": self.encode.preset, "audio": self.encode.audio,
            "pad": self.pad, "gc_every": self.gc_every, "fit": self.fit,
            "max_megapixels": self.max_megapixels, "max_duration": self.max_duration,
            "abort_over_budget": self.abort_over_budget,
            "platform": self.platform, "too_long": self.too_long, "extras": self.extras,
        }


# The settings ``keyer run`` takes as options, by the part of the job they belong to.
SECTIONS = {"key": KeySettings, "encode": EncodeSettings, "job": Job}


def job_from_options(input: Any, output: Any, options: dict[str, Any]) -> Job:
    """A Job from ``{"<section>_<field>": value}`` (as ``keyer.cli.declared_options`` names
    them); absent keys keep their defaults."""
    parts: dict[str, dict[str, Any]] = {name: {} for name in SECTIONS}
    for key, value in options.items():
        section, _, name = key.partition("__")
        parts[section][name] = value
    return Job(input=input, output=str(output), key=KeySettings(**parts["key"]),
               encode=EncodeSettings(**parts["encode"]), **parts["job"])
