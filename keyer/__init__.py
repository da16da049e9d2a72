"""keyer: green/blue-screen video to transparent sticker animations, one frame at a time.

    >>> import keyer
    >>> keyer.run("clip.mp4", "clip.webm", effects="all", posterize_fps=12)  # doctest: +SKIP
"""
from __future__ import annotations

__version__ = "0.1.0"


def run(input, output, *, effects=(), key=None, encode=None, **options):
    """Run one job from Python, as ``keyer run`` does; returns a ``keyer.pipeline.Result``.

    ``effects`` is a chain string (``"all"``, ``"alpha-bevel,drop-shadow=distance=8"``) or a list
    of effect specs; ``key`` a ``KeySettings``, ``encode`` an ``EncodeSettings``; other keywords
    are ``Job`` fields (``posterize_fps``, ``pad``, ``overwrite``, ``max_duration``, ...: see
    ``keyer.settings``), checked as the command line checks them.
    """
    from keyer.pipeline import run_job
    from keyer.settings import EncodeSettings, Job, KeySettings

    job = Job(input=input, output=str(output), key=key or KeySettings(),
              encode=encode or EncodeSettings(), effects=effects, **options)
    return run_job(job)
