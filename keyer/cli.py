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
from keyer.memory import settle_malloc
from keyer.params import kind_of
from keyer.settings import SECTIONS, job_from_options


# ---------------------------------------------------------------- options from declarations
class Declared(click.ParamType):
    """A setting's values as its declaration takes them (``keyer.params``): converted and
    range-checked by ``coerce``, a bad one refused with ``keyer: error: --name=value ...``."""

    def __init__(self, option: str, f, p) -> None:
        self.option, self.field, self.param = option, f, p
        self.name = p.metavar or p.describe_range().replace(" ", "") or kind_of(f).__name__.upper()

    def get_metavar(self, param, ctx=None) -> str:
        return self.name

    def convert(self, value, param, ctx):
        from keyer.params import coerce

        if value is None:
            return None
        try:
            return coerce(self.option, self.field, self.param, value)
        except UsageProblem as exc:
            text = str(exc)
            raise UsageProblem(text if text.startswith(self.option) else f"{self.option}: {text}") \
                from None


def declared_options(sections: dict):
    """Decorate a command with one option per declared setting of ``sections`` ({section:
    dataclass}); each value reaches the command as ``<section>__<field>``."""
    from keyer.params import params_of

    def decorate(fn):
        for section, cls in reversed(list(sections.items())):
            for name, (f, p) in reversed(list(params_of(cls).items())):
                long = p.option or f"--{name}"
                names = [p.short, long, f"{section}__{f.name}"] if p.short else \
                    [long, f"{section}__{f.name}"]
                help_ = p.help + (f" Env: {p.envvar}." if p.envvar else "")
                if kind_of(f) is bool:
                    fn = click.option(*names, is_flag=True, flag_value=not p.negate,
                                      default=p.default, help=help_)(fn)
                else:
                    fn = click.option(*names, type=Declared(long, f, p), default=p.default,
                                      envvar=p.envvar, help=help_,
                                      show_default=p.default not in (None, ()))(fn)
        return fn

    return decorate


class ByteSize(click.ParamType):
    name = "SIZE"

    def convert(self, value, param, ctx):
        from keyer.settings import byte_size

        try:
            return byte_size(value)
        except UsageProblem as exc:
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
                known[opt[2:]] = p
    defaults = {}
    for key, val in data.items():
        p = known.get(key.replace("_", "-"))
        if p is None:
            import difflib

            close = difflib.get_close_matches(key.replace("_", "-"), list(known), n=1)
            hint = f"; did you mean '{close[0]}'?" if close else ""
            raise UsageProblem(f"--config {value}: unknown setting '{key}'{hint}")
        if getattr(p, "is_flag", False) and p.flag_value is False and isinstance(val, bool):
            val = not val          # "global-key = true" sets local to False, as the flag does
        defaults[p.name] = val
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
              ".mp4 (H.264 over --background), a folder/ or a %05d.png pattern (RGBA PNGs).")
@click.option("--config", type=click.Path(dir_okay=False), is_eager=True, expose_value=False,
              callback=_load_config, help="TOML file with any of these options (the command line wins).")
@declared_options(SECTIONS)
@click.option("--log-format", type=click.Choice(["console", "json"]), default="console",
              show_default=True, help="Log lines on stderr for people, or as JSON lines.")
@click.option("--log-file", type=click.Path(dir_okay=False), default=None,
              help="Also append JSON log lines to this file.")
@click.option("-q", "--quiet", is_flag=True, help="No logs or progress on stderr.")
@click.option("-v", "--verbose", is_flag=True, help="Every log event on the console, not just "
              "the start line, the progress bar, problems and the last line.")
def run(input, output, log_format, log_file, quiet, verbose, **settings):
    """Key INPUT and write a transparent video (or PNG sequence) to OUTPUT."""
    from keyer import logs
    from keyer.pipeline import run_job

    logs.configure(log_format=log_format, log_file=log_file, quiet=quiet, verbose=verbose)
    job = job_from_options(input, output, settings)
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


BATCH_EPILOG = """\b
Examples:
  keyer batch clips/ -o stickers/ --effects all --posterize-time 12
  keyer batch a.mp4 b.mov list.txt -o out/ --format mov --suffix -keyed -j 2 --memory-budget 2G
  keyer batch clips/ -o out/ --ray                   # on a local Ray (pip install 'keyer[ray]')
  keyer batch clips/ -o out/ --ray ray://head:10001  # on an existing Ray cluster

\b
Each job is a `keyer run` process with its JSON log in DIR/logs/; DIR/keyer-batch.jsonl has one
line per attempt, and running the same batch again skips the clips already done.
Exit codes: 0 every clip done (or skipped), 1 some failed or were refused (the manifest says
which), 2 usage, 4 DIR unwritable, 130/143 stopped by SIGINT/SIGTERM (every job stopped first).
"""


@cli.command(epilog=BATCH_EPILOG)
@click.argument("inputs", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("-o", "--output", "out_dir", required=True, type=click.Path(file_okay=False),
              help="Folder for the outputs, logs/ and keyer-batch.jsonl.")
@click.option("--format", "fmt", default="webm", show_default=True,
              help="Output format of every job: webm, mov, mp4 or png (a folder of PNGs each).")
@click.option("--suffix", default="", help="Added to each input's name: clip.mp4 -> "
              "DIR/clip<SUFFIX>.webm.")
@click.option("-j", "--jobs", type=click.IntRange(1, 1024), default=None,
              help="At most this many jobs at once (default: the cores; memory may allow fewer).")
@click.option("--ray", "ray_address", is_flag=False, flag_value="local", default=None,
              metavar="[ADDRESS]", help="Run the jobs on Ray: a local Ray started for the batch, "
              "or the cluster at ADDRESS (needs pip install 'keyer[ray]').")
@click.option("--redo", is_flag=True, help="Run every input again, ignoring what the manifest "
              "says is done (existing outputs still need --overwrite).")
@click.option("--config", type=click.Path(dir_okay=False), is_eager=True, expose_value=False,
              callback=_load_config, help="TOML file with any of these options (the command line wins).")
@declared_options(SECTIONS)
@click.option("-q", "--quiet", is_flag=True, help="Nothing on stderr but errors.")
def batch(inputs, out_dir, fmt, suffix, jobs, ray_address, redo, quiet, **settings):
    """Key many INPUTS (files, folders, .txt lists of paths) into DIR, as many at once as the
    memory budget and cores allow. --memory-budget is for all jobs together."""
    from keyer.batch_driver import BatchIncomplete, run_batch

    budget = settings.pop("job__memory_budget", None)
    template = job_from_options(".", ".", settings)
    _, summary = run_batch(inputs, out_dir, template, suffix=suffix, fmt=fmt, jobs=jobs,
                           memory_budget=budget, ray=ray_address, resume=not redo, quiet=quiet)
    if summary.failed or summary.refused:
        raise BatchIncomplete(f"{summary.failed + summary.refused} of {summary.inputs} inputs "
                              f"failed or were refused; see {Path(out_dir) / 'keyer-batch.jsonl'}")


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
    from keyer.effects import describe

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


@cli.command("platforms")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
def platforms_cmd(as_json):
    """List the sticker platforms keyer run --for knows, with their rules."""
    from keyer.platforms import PROFILES, table

    if as_json:
        click.echo(json.dumps([p.row() for p in PROFILES.values()], indent=2))
        return
    click.echo(table())


@cli.command("check")
@click.argument("file", type=click.Path(path_type=Path))
@click.option("--for", "platform", required=True, metavar="PLATFORM",
              help="The platform whose rules FILE must meet (see keyer platforms).")
def check_cmd(file, platform):
    """Verify FILE against every rule of a platform; one line per broken rule, exit 1 if any."""
    from keyer.platforms import profile
    from keyer.stickercheck import check

    problems = check(file, profile(platform))
    for line in problems:
        click.echo(f"{file}: {line}")
    if problems:
        raise CheckFailed(f"{file}: {len(problems)} rule(s) of {platform} broken")
    click.echo(f"{file}: meets every rule of {platform}")


class CheckFailed(KeyerError):
    exit_code = 1


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Also print what was done as JSON, with "
              "the library pages this install keeps resident (keyer batch reads it).")
def warm(as_json):
    """Compile or load every kernel into the cache, then exit (for image builds and CI).

    A job on a cold cache spends tens of seconds, and a few hundred MB, compiling its kernels;
    after `keyer warm` it loads them from the cache instead.
    """
    from keyer.cache import cache_dir
    from keyer.memory import status_mb
    from keyer.warmup import warm_all

    t = time.perf_counter()
    compiled = warm_all()
    seconds = time.perf_counter() - t
    click.echo(f"keyer: kernels ready in {seconds:.1f} s ({compiled} compiled, "
               f"the rest loaded from the cache in {cache_dir() / 'numba'})", err=True)
    if as_json:
        click.echo(json.dumps({"compiled": compiled, "seconds": round(seconds, 3),
                               "file_mb": status_mb().get("file")}))


@cli.command()
@click.argument("logs", nargs=-1, required=True, type=click.Path(allow_dash=True))
@click.option("--html", "html", type=click.Path(dir_okay=False), default=None,
              help="Also write a self-contained offline dashboard to this file.")
def report(logs, html):
    """Summarise keyer JSON logs: peak memory and who holds it, growth per 100 frames, GC, fps."""
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
@click.option("--max-private", type=ByteSize(), default=None,
              help="Fail when a job's peak private (anonymous) memory is above this: what each "
                   "extra job in a batch adds (e.g. 500M).")
@click.option("--max-unattributed", type=ByteSize(), default=None,
              help="Fail when more private memory than this is explained by no owner of the "
                   "memory ledger: the leak and fragmentation signal (e.g. 8M).")
def memcheck(logs, max_peak, max_growth, max_private, max_unattributed):
    """Exit non-zero when a job in LOGS broke a memory limit (for CI)."""
    from keyer import report as rep

    failures = rep.memcheck(rep.load(list(logs)), max_peak, max_growth, max_private,
                            max_unattributed)
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
    settle_malloc()
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
