"""The output formats: container, codec, pixel format and encoder options of each.

Kept apart from ``keyer.encode`` (and free of numpy and Numba) so that the bench's codec floor,
which encodes with exactly these settings, does not pay for keyer's imports.
"""
from __future__ import annotations

from dataclasses import dataclass, field

PRESETS = ("fast", "balanced", "quality")


@dataclass(frozen=True)
class OutputFormat:
    """One row of the output table: codec, pixel format and how it is driven."""

    name: str
    container: str | None
    codec: str | None
    pix_fmt: str
    alpha: bool
    crf: int | None                       # default quality
    presets: dict = field(default_factory=dict)   # preset -> encoder options
    audio_copy: tuple[str, ...] = ()      # audio codecs the container takes as they are
    audio_codec: str | None = None        # otherwise transcode to this
    flatten: bool = False                 # composite over a background (no alpha)
    muxer: dict = field(default_factory=dict)     # container options (loop flags)
    even: bool = False                    # the encoder takes even widths and heights only

    def coded_size(self, width: int, height: int) -> tuple[int, int]:
        """The size the encoder gets for a ``width`` x ``height`` picture: rounded up to even
        where it must be (the extra column/row is transparent: the background shows)."""
        if not self.even:
            return width, height
        return width + width % 2, height + height % 2


FORMATS = {
    # VP9 with alpha (FFmpeg encodes the alpha plane as a second VP9 stream, tagged
    # alpha_mode=1). fast = realtime, cpu-used 8: the speed the bench's codec floor runs at;
    # row-mt lets the threads keyer.threads.ThreadPlan gives it share a frame; lag-in-frames 0
    # keeps no look-ahead frames alive (libvpx's defaults cost far more memory). Figures:
    # docs/performance.md, "Output formats".
    ".webm": OutputFormat(
        ".webm", "webm", "libvpx-vp9", "yuva420p", True, 32,
        presets={
            "fast": {"deadline": "realtime", "cpu-used": "8", "lag-in-frames": "0"},
            "balanced": {"deadline": "good", "cpu-used": "4", "lag-in-frames": "0"},
            "quality": {"deadline": "good", "cpu-used": "1", "lag-in-frames": "16",
                        "auto-alt-ref": "1"},
        },
        audio_copy=("opus", "vorbis"), audio_codec="libopus"),
    # ProRes 4444 with a 16-bit alpha plane (prores_ks profile 4); quality is fixed by the
    # profile, --crf does not apply. The slowest format by far, so its encoder gets every core.
    ".mov": OutputFormat(
        ".mov", "mov", "prores_ks", "yuva444p10le", True, None,
        presets={"fast": {"profile": "4", "vendor": "apl0", "quant_mat": "auto"},
                 "balanced": {"profile": "4", "vendor": "apl0", "quant_mat": "auto"},
                 "quality": {"profile": "4", "vendor": "apl0", "quant_mat": "hq"}},
        audio_copy=("aac", "alac", "mp3", "pcm_s16le", "pcm_s24le"), audio_codec="aac"),
    # H.264 has no alpha: frames are composited over --background.
    ".mp4": OutputFormat(
        ".mp4", "mp4", "libx264", "yuv420p", False, 20,
        presets={"fast": {"preset": "veryfast"}, "balanced": {"preset": "medium"},
                 "quality": {"preset": "slow"}},
        audio_copy=("aac", "mp3", "opus", "ac3"), audio_codec="aac", flatten=True,
        even=True),   # libx264 refuses odd sizes in 4:2:0
    # Animated formats for sticker platforms; none carries audio. FFmpeg's webp and apng
    # muxers play once by default: loop=0 / plays=0 make them loop forever. libwebp_anim gets
    # BGRA, so libwebp does its own RGB -> Y'CbCr (and keeps the alpha plane exact); quality
    # 75 (libwebp's default; --crf does not apply: `keyer run --for` searches it). Measured at 512x512,
    # 60 frames of noise on the 2-core box: 3.9-4.8 s a run (compression_level 4).
    ".webp": OutputFormat(".webp", "webp", "libwebp_anim", "bgra", True, None,
                          presets={"fast": {"quality": "75", "compression_level": "2"},
                                   "balanced": {"quality": "75", "compression_level": "4"},
                                   "quality": {"quality": "75", "compression_level": "6"}},
                          muxer={"loop": "0"}),
    # APNG, 8-bit RGBA (colour type 6, never a palette: iOS does not animate palette APNGs);
    # FFmpeg's encoder crops each frame to what changed and picks blend/dispose per frame.
    ".apng": OutputFormat(".apng", "apng", "apng", "rgba", True, None,
                          presets={"fast": {"pred": "none"}, "balanced": {"pred": "paeth"},
                                   "quality": {"pred": "mixed"}},
                          muxer={"plays": "0"}),
    # GIF: a 256-colour palette per frame with one fully transparent entry (1-bit alpha),
    # ordered dither (keyer.gif); loop=0 loops forever.
    ".gif": OutputFormat(".gif", "gif", "gif", "pal8", True, None, muxer={"loop": "0"}),
    # RGBA PNG sequence: one file per source frame (a held image is repeated, since a
    # sequence has no timing of its own).
    "png": OutputFormat("png", None, None, "rgba", True, None),
}


def encoder_bound(fmt: OutputFormat, preset: str = "fast") -> bool:
    """Whether the encoder at ``preset`` is by far the slowest stage of a job (ProRes; VP9 and
    H.264 beyond ``fast``), so that it should get every core (see ``keyer.threads.ThreadPlan``)."""
    return fmt.codec == "prores_ks" or (fmt.codec is not None and preset != "fast")


def encoder_options(fmt: OutputFormat, preset: str = "fast", crf: int | None = None) -> dict[str, str]:
    """The encoder's options for ``fmt`` at ``preset`` and ``crf`` (None: the format's default)."""
    options = dict(fmt.presets.get(preset, {}))
    crf = crf if crf is not None else fmt.crf
    if fmt.codec == "libvpx-vp9":
        options.update({"crf": str(crf), "b": "0", "row-mt": "1"})
    elif fmt.codec == "libx264":
        options.update({"crf": str(crf)})

    return options
