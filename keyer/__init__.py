"""keyer: green/blue-screen video to transparent sticker animations, one frame at a time.

    >>> import keyer
    >>> keyer.run("clip.mp4", "clip.webm", effects="all", posterize_fps=12)  # doctest: +SKIP

How it fits together, in the order a frame meets it:

* ``keyer.settings`` -- what a job asks for (``Job``, ``KeySettings``, ``EncodeSettings``), each
  setting declared once with ``keyer.params.param``; the CLI (``keyer.cli``) is generated from it.
* ``keyer.probe`` -- the input's header and first frame, read before anything else.
* ``keyer.plan`` -- ``Plan.make`` decides everything before decoding: limits, memory budget,
  threads (``keyer.threads.ThreadPlan``), the key path and the stages.
* ``keyer.pipeline`` -- ``run_job`` carries the plan out as a fold of generator stages, each
  wrapped by ``metered`` (the only code that logs per stage), pulled by the encoder:
  ``keyer.decode`` -> ``keyer.posterize`` -> ``keyer.stages`` (the key, ``keyer.keying``, and
  the effects, ``keyer.effects``) -> ``keyer.encode`` (a temporary file, renamed on success).
* ``keyer.frame`` -- the ``Frame`` that flows through, and the contract between a stage and an
  effect (``Geometry``, ``FrameOp``, ``Boxes``).
* ``keyer.kernels`` -- the Numba kernels, pure functions ``(inputs, scalars, out)``.
* ``keyer.sticker`` -- ``--for PLATFORM``: the same stages keyed once into a spool on disk, then
  framed (``keyer.spool``) and fitted to the platform's rules (``keyer.platforms``) by a size
  search (``keyer.stickersearch``), checked by ``keyer.stickercheck`` (``keyer check``) before
  publishing; ``keyer.animated`` makes the WebP, APNG and GIF encoders' frames.
* ``keyer.logs``, ``keyer.memory``, ``keyer.budget``, ``keyer.report`` -- structured events
  with memory on each, the budget, and the reports read back from the logs.
* ``keyer.batch_driver`` -- ``keyer batch``: many jobs, each a ``keyer run`` process, admitted
  by memory and cores and retried by ``keyer.admission``; ``keyer.batch_manifest`` (the manifest
  and resume), ``keyer.batch_local`` and ``keyer.batch_ray`` (the executors).
"""
from __future__ import annotations

__version__ = "0.2.0"


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


def batch(inputs, out_dir, **options):
    """Run many jobs as ``keyer batch`` does (``keyer.batch_driver.batch``): each input its own
    ``keyer run`` process, as many at once as ``memory_budget`` and ``jobs`` allow; returns the
    manifest's records for this run (a dict per attempt, per refused and per skipped input).

        >>> keyer.batch(["a.mp4", "clips/"], "out", effects="all", memory_budget="2G")  # doctest: +SKIP
    """
    from keyer.batch_driver import batch as run_batch

    return run_batch(inputs, out_dir, **options)
