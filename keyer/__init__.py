"""keyer: green/blue-screen video to transparent sticker animations, one frame at a time.

    >>> import keyer
    >>> keyer.run("clip.mp4", "clip.webm", effects="all", posterize_fps=12)  # doctest: +SKIP
"""
from __future__ import annotations

__version__ = "0.1.0"


def run(input, output, *, effects="", key=None, **options):
    """Run one job from Python, as ``keyer run`` does; returns a ``keyer.pipeline.Result``.

    ``effects`` is a chain string (``"all"``, ``"alpha-bevel,drop-shadow=distance=8"``) or a list
    of effect specs; ``key`` a ``KeySettings``; other keywords are ``Job`` fields
    (``posterize_fps``, ``pad``, ``overwrite``, ``encode=EncodeSettings(...)``, ``gc_every``).
    """
    from fractions import Fraction

    from keyer.keying import KeySettings
    from keyer.pipeline import Job, run_job

    if isinstance(effects, str):
        from effects.base import parse_chain

        effects = parse_chain(effects) if effects.strip() else ()
    if options.get("posterize_fps") is not None:
        options["posterize_fps"] = Fraction(options["posterize_fps"]).limit_denominator(1001000)
    job = Job(input=input, output=str(output), key=key or KeySettings(), effects=tuple(effects),
              **options)
    return run_job(job)
