"""keyer's command line: a thin translation onto the library (``keyer.pipeline.run_job``).

One translation point (``main``) turns every KeyerError into ``keyer: error: <message>`` and the
class's exit code; nothing a user can type ends in a traceback.
"""
from __future__ import annotations

import gc
import json
import os
import signal
import sys
import time
from fractions import Fraction
from pathlib import Path

import click

from keyer import __version__
from keyer.errors import EXIT_CODES, Aborted, KeyerError, UsageProblem


# ---------------------------------------------------------------- parameter types
class KeyColor(click.ParamType):
    name = "auto|green|blue|#RRGGBB"

    def convert(self, value, param, ctx):
        from keyer.keying import parse_key_color

        try:
            parse_key_color(value)
        except UsageProblem as exc:
            self.fail(str(exc).removeprefix("--key "), param, ctx)
        return value


class EffectChain(click.ParamType):
    name = "CHAIN"

    def convert(self, value, param, ctx):
        if isinstance(value, tuple):
            return value
        if not str(value).strip():
            return ()
        from effects.base import parse_chain

        if isinstance(value, (list, tuple)):
            value = ",".join(value)
        try:
            return tuple(parse_chain(str(value)))
        except UsageProblem as exc:
            raise UsageProblem(f"--effects: {exc}") from None


class FrameRate(click.ParamType):
    name = "FPS"

    def convert(self, value, param, ctx):
        if isinstance(value, Fraction):
            return value
        try:
            fps = Fraction(str(value)).limit_denominator(1001000)
        except (ValueError, ZeroDivisionError):
            self.fail(f"{value!r} is not a frame rate (try 12 or 30000/1001)", param, ctx)
        if fps <= 0 or fps > 1000:
            self.fail(f"{value} is outside 0..1000 fps", param, ctx)
        return fps


class ByteSize(click.ParamType):
    name = "SIZE"

    def convert(self, value, param, ctx):
        from keyer.memory import parse_size

        if isinstance(value, int):
            return value
        try:
            return parse_size(value)
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


def _load_config(ctx: click.Context, param, value):
    """Eager --config: the TOML file fills the defaults, so command-line options win."""
    if not value:
        return value
    try:  # Python 3.11+; imported here, as only --config needs it
        import tomllib
    except ModuleNotFoundError:  # pragma: no cover - Python 3.10
        import tomli as tomllib
    try:
        with open(value, "rb") as fh:
            data = tomllib.load(fh)
    except FileNotFoundError:
        raise UsageProblem(f"--config {value}: no such file") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise UsageProblem(f"--config {value}: not valid TOML ({exc})") from None
    # config keys are the long option names (with - or _): "posterize-time", "effects", "key"
    known = {}
    for p in ctx.command.params:
        for opt in getattr(p, "opts", []):
            if opt.startswith("--") and p.name not in ("config",):
                known[opt[2:]] = p.name
    defaults = {}
    for key, val in data.items():
        name = known.get(key.replace("_", "-"))
        if name is None:
            import difflib

            close = difflib.get_close_matches(key.replace("_", "-"), list(known), n=1)
            hint = f"; did you mean '{close[0]}'?" if close else ""
            raise UsageProblem(f"--config {value}: unknown setting '{key}'{hint}")
        if name == "effect_chain" and isinstance(val, list):
            val = ",".join(val)
        defaults[name] = val
    ctx.default_map = {**(ctx.default_map or {}), **defaults}
    return value


# ---------------------------------------------------------------- commands
EPILOG = """\b
Examples:
  keyer run clip.mp4 -o clip.webm
  keyer run clip.mp4 -o clip.mov --key blue --spill 0.8
  keyer run clip.mp4 -o sticker.webm --effects all --posterize-time 12 --pad 24
  keyer run clip.mp4 -o out.webm --effects "displacement=amount=6,alpha-bevel,drop-shadow=distance=8:softness=6"
  keyer run clip.mp4 -o frames/ --log-format json --log-file job.jsonl
  keyer probe clip.mp4 --json

\b
Exit codes:
""" + "\n".join(f"  {code:>3}  {text}" for code, text in EXIT_CODES.items())


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
             epilog=EPILOG)
@click.version_option(__version__, "--version", prog_name="keyer")
def cli() -> None:
    """Turn green- or blue-screen video into transparent sticker animations, in constant memory."""


@cli.command(epilog=EPILOG)
@click.argument("input", type=click.Path(dir_okay=True, path_type=Path))
@click.option("-o", "--output", required=True, help="Output: .webm (VP9+alpha), .mov (ProRes 4444), "
              ".mp4 (H.264 over --background), a folder or a %05d.png pattern (RGBA PNGs).")
@click.option("-y", "--overwrite", is_flag=True, help="Replace an existing output.")
@click.option("--config", type=click.Path(dir_okay=False), is_eager=True, expose_value=False,
              callback=_load_config, help="TOML file with any of these options (the command line wins).")
@click.option("--key", "key_color", default="auto", type=KeyColor(), show_default=True,
              help="Screen colour: auto, green, blue or #RRGGBB.")
@click.option("--similarity", type=click.FloatRange(0, 1), default=0.12, show_default=True,
              help="How far from the screen (0..1, as a ratio of the screen's own saturation) is still fully transparent.")
@click.option("--softness", type=click.FloatRange(0.01, 1), default=0.55, show_default=True,
              help="Width of the soft edge (0..1) below that.")
@click.option("--spill", type=click.FloatRange(0, 1), default=1.0, show_default=True,
              help="Spill suppression strength (0 = off).")
@click.option("--spill-limit", type=click.Choice(["max", "average", "min"]), default="max",
              show_default=True, help="Limit the screen channel to the max/average/min of the other two.")
@click.option("--balance", type=click.FloatRange(0, 1), default=1.0, show_default=True,
              help="Weight of the larger other channel in the colour difference (1 = max).")
@click.option("--clip-black", type=click.FloatRange(0, 1), default=0.0, show_default=True,
              help="Alpha below this becomes 0.")
@click.option("--clip-white", type=click.FloatRange(0, 1), default=1.0, show_default=True,
              help="Alpha above this becomes 1.")
@click.option("--shrink", type=click.FloatRange(0, 100), default=0.0, show_default=True,
              help="Erode the matte by this many px.")
@click.option("--feather", type=click.FloatRange(0, 100), default=0.0, show_default=True,
              help="Blur the matte edge by this many px.")
@click.option("--denoise", type=click.IntRange(0, 10), default=2, show_default=True,
              help="Radius (px) of the luma-guided filter that steadies noise and sharpens edges (0 = off).")
@click.option("--global-key", is_flag=True, help="Key against one screen colour instead of a local estimate.")
@click.option("--effects", "effect_chain", type=EffectChain(), default="",
              help="Sticker effects in FFmpeg filter syntax, e.g. \"displacement=amount=6,alpha-bevel\"; "
                   "'all' = the six sticker effects. See `keyer effects`.")
@click.option("--posterize-time", type=FrameRate(), default=None,
              help="Show a new image only this many times per second (e.g. 12).")
@click.option("--pad", type=click.IntRange(0, 2000), default=0, show_default=True,
              help="Grow the canvas by this many px on each side (room for shadows and outlines).")
@click.option("--crf", type=click.IntRange(0, 63), default=None,
              help="Quality (lower = better): VP9 default 32, H.264 default 20; not for ProRes/PNG.")
@click.option("--preset", type=click.Choice(["fast", "balanced", "quality"]), default="fast",
              show_default=True, help="Encoder speed/quality trade-off.")
@click.option("--threads", type=click.IntRange(0, 64), default=None,
              help="Encoder threads, as FFmpeg's -threads (0 = FFmpeg's own choice). Default: all "
                   "cores; with --effects and --preset fast VP9/H.264, 1 on 2 cores and all but "
                   "one on more.")
@click.option("--background", default="#ffffff", show_default=True,
              help="For .mp4 (no alpha): colour #RRGGBB or an image to composite over.")
@click.option("--no-audio", is_flag=True, help="Drop the audio track.")
@click.option("--log-format", type=click.Choice(["console", "json"]), default="console",
              show_default=True, help="Log lines on stderr for people, or as JSON lines.")
@click.option("--log-file", type=click.Path(dir_okay=False), default=None,
              help="Also append JSON log lines to this file.")
@click.option("-q", "--quiet", is_flag=True, help="No logs or progress on stderr.")
@click.option("-v", "--verbose", is_flag=True, help="Every log event on the console, not just start, end and problems.")
@click.option("--gc-every", type=click.IntRange(0), default=10, show_default=True,
              help="Sample memory and run gc.collect() every N frames (0 = never).")
@click.option("--memory-budget", type=ByteSize(), default=None,
              help="Memory budget, e.g. 800M or 1.5G (default: the container's cgroup limit, if any). "
                   "Warns at 75%, critical at 90%; a job whose estimate exceeds it is refused.")
@click.option("--abort-over-budget", is_flag=True,
              help="Stop cleanly (exit 6) at 90% of the budget instead of risking the OOM killer.")
@click.option("--fit", is_flag=True, help="Scale down to the largest size within the limits and budget.")
@click.option("--max-megapixels", type=click.FloatRange(min=0.001), default=24.0, show_default=True,
              envvar="KEYER_MAX_MEGAPIXELS", help="Refuse (or --fit) larger frames. Env: KEYER_MAX_MEGAPIXELS.")
@click.option("--max-duration", type=click.FloatRange(min=0.001), default=None,
              envvar="KEYER_MAX_DURATION", help="Refuse inputs longer than this many seconds.")
def run(input, output, overwrite, key_color, similarity, softness, spill, spill_limit, balance,
        clip_black, clip_white, shrink, feather, denoise, global_key, effect_chain, posterize_time,
        pad, crf, preset, threads, background, no_audio, log_format, log_file, quiet, verbose, gc_every,
        memory_budget, abort_over_budget, fit, max_megapixels, max_duration):
    """Key INPUT and write a transparent video (or PNG sequence) to OUTPUT."""
    from keyer import logs
    from keyer.encode import EncodeSettings
    from keyer.keying import KeySettings
    from keyer.pipeline import Job, run_job

    if isinstance(effect_chain, str):
        effect_chain = EffectChain().convert(effect_chain, None, None)
    logs.configure(log_format=log_format, log_file=log_file, quiet=quiet, verbose=verbose)
    job = Job(
        input=input, output=output, overwrite=overwrite,
        key=KeySettings(color=key_color, similarity=similarity, softness=softness, spill=spill,
                        spill_limit=spill_limit, balance=balance, clip_black=clip_black,
                        clip_white=clip_white, shrink=shrink, feather=feather, denoise=denoise,
                        local=not global_key),
        effects=tuple(effect_chain), posterize_fps=posterize_time,
        encode=EncodeSettings(crf=crf, preset=preset, audio=not no_audio, background=background,
                              threads=threads),
        pad=pad, gc_every=gc_every, memory_budget=memory_budget,
        abort_over_budget=abort_over_budget, fit=fit, max_megapixels=max_megapixels,
        max_duration=max_duration,
    )
    show = not quiet and sys.stderr.isatty()
    progress = Progress() if show else None
    gc.freeze()     # what start-up made lives for the whole run (see ``main``)
    gc.enable()
    try:
        result = run_job(job, progress=progress)
    finally:
        if progress:
            progress.done()
        logs.close()
    if not quiet:
        click.echo(f"keyer: {wrote_line(result)}", err=True)


def wrote_line(result) -> str:
    """The last line of a job that worked: what was written, how fast, the memory it took."""
    made = f"{result.frames_out} frames"
    if result.frames_out != result.frames_in:
        made += f" from {result.frames_in}"
    if result.damaged_packets:
        made += f", {result.damaged_packets} damaged packets skipped"
    memory = f"peak RSS {result.peak_rss_mb:.0f} MB"
    if result.kernels_compiled:
        memory += " with compiling kernels (`keyer warm` once avoids it)"
    elif result.estimate_mb:
        memory += f" (estimated {result.estimate_mb:.0f} MB)"
    return f"wrote {result.output} ({made}, {result.fps:.1f} fps; {memory})"


class Progress:
    """A one-line progress bar on a terminal: frames, fps, ETA. Redraws at most 4 times a second,
    and once more at the end, so the bar left on screen shows where the job stopped."""

    def __init__(self) -> None:
        self.last = 0.0
        self.state: tuple[int, int | None, float] | None = None

    def __call__(self, done: int, total: int | None, fps: float) -> None:
        self.state = (done, total, fps)
        now = time.monotonic()
        if now - self.last < 0.25:
            return
        self.last = now
        self._draw()

    def _draw(self) -> None:
        done, total, fps = self.state
        if total:
            frac = min(1.0, done / total)
            bar = "#" * int(frac * 30)
            eta = max(0, total - done) / fps if fps else 0
            text = f"\r[{bar:<30}] {done}/{total} frames {fps:5.1f} fps ETA {eta:4.0f}s"
        else:
            text = f"\r{done} frames {fps:5.1f} fps"
        sys.stderr.write(text)
        sys.stderr.flush()

    def done(self) -> None:
        if self.state is not None:
            self._draw()
            sys.stderr.write("\n")
            sys.stderr.flush()
            self.state = None


@cli.command()
@click.argument("input", type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
def probe(input, as_json):
    """Describe INPUT's video (size, fps, duration, frames, codec, audio, rotation)."""
    from keyer.probe import expected_frames
    from keyer.probe import probe as do_probe

    info = do_probe(input)
    d = info.as_dict()
    d["frames_estimate"] = expected_frames(info)
    if as_json:
        click.echo(json.dumps(d, indent=2))
        return
    w, h = info.display_size
    dur = f"{info.duration:.3f} s" if info.duration is not None else "unknown"
    frames = info.frames if info.frames else f"~{d['frames_estimate']}" if d["frames_estimate"] else "unknown"
    audio = (f"{info.audio_codec} {info.audio_rate} Hz {info.audio_channels} ch"
             if info.has_audio else "none")
    alpha = " with alpha" if info.alpha else ""
    click.echo(f"{input}\n  container  {info.container}\n  video      {info.codec} {info.pix_fmt}{alpha} "
               f"{w}x{h} (coded {info.width}x{info.height}, rotation {info.rotation})\n"
               f"  fps        {float(info.fps):.3f}\n  duration   {dur}\n  frames     {frames}\n"
               f"  colour     {info.colorspace}, range {info.color_range}\n  audio      {audio}")


@cli.command("effects")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
def effects_cmd(as_json):
    """List the sticker effects with their parameters, ranges and defaults."""
    from effects import describe

    rows = describe()
    if as_json:
        click.echo(json.dumps(rows, indent=2, default=str))
        return
    for row in rows:
        click.echo(f"{row['name']}: {row['summary']}")
        for p in row["params"]:
            click.echo(f"    {p['name']:<14} default {p['default']!s:<10} {p['range']:<22} {p['help']}")
    click.echo("\nChain them in FFmpeg filter syntax: --effects \"displacement=amount=6,alpha-bevel\"; "
               "'all' = displacement, multiply, add, surface-bevel, alpha-bevel, drop-shadow.")


@cli.command()
def warm():
    """Compile or load every kernel into the cache, then exit (for image builds and CI).

    A job on a cold cache spends tens of seconds, and a few hundred MB, compiling its kernels;
    after `keyer warm` it loads them from the cache instead.
    """
    from keyer.cache import cache_dir
    from keyer.warmup import warm_all

    t = time.perf_counter()
    compiled = warm_all()
    click.echo(f"keyer: kernels ready in {time.perf_counter() - t:.1f} s ({compiled} compiled, "
               f"the rest loaded from the cache in {cache_dir() / 'numba'})", err=True)


@cli.command()
@click.argument("logs", nargs=-1, required=True, type=click.Path(allow_dash=True))
@click.option("--html", "html", type=click.Path(dir_okay=False), default=None,
              help="Also write a self-contained offline dashboard to this file.")
def report(logs, html):
    """Summarise keyer JSON logs: peak RSS/VMS per stage, growth per 100 frames, GC, fps."""
    from keyer import report as rep

    if html:
        rep.require_plotly()   # before any output: the one line that says what to install
    jobs = rep.load(list(logs))
    click.echo(rep.render_text(jobs))
    if html:
        rep.write_html(jobs, html)
        click.echo(f"keyer: wrote {html}", err=True)


@cli.command()
@click.argument("logs", nargs=-1, required=True, type=click.Path(allow_dash=True))
@click.option("--max-peak", type=ByteSize(), default=None, help="Fail when a job's peak RSS is above this (e.g. 400M).")
@click.option("--max-growth", type=ByteSize(), default=None,
              help="Fail when RSS grows more than this per 100 frames (e.g. 2M).")
def memcheck(logs, max_peak, max_growth):
    """Exit non-zero when a job in LOGS broke a memory limit (for CI)."""
    from keyer import report as rep

    failures = rep.memcheck(rep.load(list(logs)), max_peak, max_growth)
    if failures:
        raise MemcheckFailed("; ".join(failures))
    click.echo("keyer: memcheck passed")


class MemcheckFailed(KeyerError):
    exit_code = 1


# ---------------------------------------------------------------- entry point
def _on_sigterm(signum, frame):
    raise Aborted(signal.SIGTERM)


def main(argv: list[str] | None = None) -> None:
    """Console entry point: one place turns errors into a message and an exit code."""
    # numpy and OpenCV each load their own OpenBLAS, which starts a spinning worker thread per
    # extra core; keyer makes no BLAS calls on the frame path (surface-bevel's bind does one
    # small matmul), and on 2 cores the two workers burn ~100-250 ms of CPU before frame 0.
    # Set before numpy is imported; a value the user set wins.
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    # Start-up (imports, Numba's registries, parsing effects) allocates ~180k objects that all
    # stay alive: collecting cycles meanwhile is wasted work (~0.1 s). ``run`` freezes them and
    # turns collection back on before the job; the other commands are short and make no cycles.
    gc.disable()
    signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        cli.main(args=argv, prog_name="keyer", standalone_mode=False)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        sys.exit(2 if isinstance(exc, click.UsageError) else exc.exit_code)
    except (KeyboardInterrupt, click.exceptions.Abort):
        _fail(Aborted(signal.SIGINT))
    except KeyerError as exc:
        _fail(exc)
    except Exception as exc:  # noqa: BLE001 - the one place that must never show a traceback
        if os.environ.get("KEYER_DEBUG"):
            raise
        _fail(KeyerError(f"internal error: {type(exc).__name__}: {exc} (KEYER_DEBUG=1 shows where)"))
    sys.exit(0)


def _fail(exc: KeyerError) -> None:
    msg = " ".join(str(exc).split())  # exactly one line
    sys.stderr.write(f"keyer: error: {msg}\n")
    sys.stderr.flush()
    sys.exit(exc.exit_code)
