"""How many threads each part of a job gets, and that the job's threads really get them."""
from __future__ import annotations

import threading
import time

import numba
import pytest

from keyer.formats import FORMATS, encoder_bound
from keyer.host import cpu_quota
from keyer.threads import ThreadPlan, prefetch
from tests.clips import make_clip


@pytest.mark.parametrize("cores, bound, effects, encoder, kernels", [
    (1, False, True, 1, 1),
    (1, False, False, 1, 1),
    (2, False, True, 1, 1),     # key + effects fill both cores: nothing parallel inside them
    (2, False, False, 2, 1),    # keying alone leaves room beside the encoder: it gets both
    (2, True, True, 2, 1),      # an encoder far slower than the stages gets both
    (4, False, True, 3, None),  # all but one core to the encoder, Numba's default to the kernels
    (4, False, False, 4, None),
    (4, True, True, 4, None),
])
def test_the_plan_follows_the_cores_the_work_and_how_slow_the_encoder_is(cores, bound, effects,
                                                                       encoder, kernels):
    plan = ThreadPlan.for_cores(cores, encoder_bound=bound, effects=effects)
    assert (plan.cores, plan.encoder, plan.kernels) == (cores, encoder, kernels)


def test_an_explicit_encoder_thread_count_wins():
    assert ThreadPlan.for_cores(2, encoder=3).encoder == 3
    assert ThreadPlan.for_cores(2, encoder=0).encoder == 0    # FFmpeg's own choice
    assert ThreadPlan.for_cores(0).cores == 1


@pytest.mark.parametrize("ext, preset, bound", [
    (".webm", "fast", False), (".webm", "balanced", True), (".webm", "quality", True),
    (".mp4", "fast", False), (".mp4", "quality", True),
    (".mov", "fast", True),     # ProRes: the slowest encoder whatever the preset
    ("png", "fast", False),
])
def test_which_encoders_are_far_slower_than_the_stages(ext, preset, bound):
    assert encoder_bound(FORMATS[ext], preset) is bound


@pytest.mark.parametrize("text, cores", [
    ("200000 100000\n", 2), ("150000 100000", 2), ("50000 100000", 1), ("100000 100000", 1),
    ("max 100000\n", None), ("-1 100000", None), ("", None), ("nonsense", None),
])
def test_a_containers_cpu_quota_in_cores(text, cores):
    assert cpu_quota(text) == cores


def test_prefetch_runs_init_in_its_worker_thread_first_and_reports_its_failure():
    seen = []

    def items():
        seen.append(("item", threading.current_thread().name))
        yield 1

    it = prefetch(items(), 1, "t", init=lambda: seen.append(("init", threading.current_thread().name)))
    assert list(it) == [1]
    assert seen == [("init", "keyer-t"), ("item", "keyer-t")]

    def fail():
        raise RuntimeError("no threads for you")

    with pytest.raises(RuntimeError, match="no threads for you"):
        list(prefetch(iter([1]), 1, "t", init=fail))


@pytest.mark.parametrize("handoff, ahead", [(False, 2), (True, 1)])
def test_a_handoff_source_makes_its_next_item_only_once_the_last_one_was_taken(handoff, ahead):
    """With ``handoff`` a ring of two buffers suffices: the source is never asked for item k+2
    (which reuses item k's buffer) before the consumer took k+1, i.e. was done with k."""
    made, taken = [], []

    def items():
        for k in range(6):
            made.append(k)
            yield k

    it = prefetch(items(), 1, "t", handoff=handoff)
    for k in it:
        taken.append(k)
        time.sleep(0.05)   # the consumer is slow: a free-running source gets ahead
        assert max(made) - k == ahead or max(made) == 5
    assert taken == list(range(6))


def test_a_handoff_worker_stops_when_closed_while_waiting():
    it = prefetch(iter(range(10)), 1, "t", handoff=True)
    assert next(it) == 0
    time.sleep(0.05)
    it.close()
    assert not it.thread.is_alive()


@pytest.mark.parametrize("cores, output, effects, encoder, kernels", [
    (2, "o.webm", "", 2, 1),
    (2, "o.mp4", "drop-shadow", 1, 1),
    (2, "o.webm", "multiply", 1, 1),
    (2, "o.mov", "", 2, 1),
    (4, "o.webm", "drop-shadow", 3, None),
])
def test_each_thread_of_a_job_runs_its_kernels_and_encoder_as_planned(tmp_path, monkeypatch, cores,
                                                                      output, effects, encoder,
                                                                      kernels):
    """The plan is logged, the encoder is opened with its thread count, the key's and the
    effects' threads (and the caller's, while the job runs) launch kernels on the planned
    number of Numba threads, and the caller's own setting is back when the job ends."""
    from structlog.testing import capture_logs

    import keyer.encode
    import keyer.host
    import keyer.stages
    from keyer.effects.base import parse_chain
    from keyer.pipeline import Job, run_job

    monkeypatch.setattr(keyer.host, "available_cores", lambda: cores)
    expected_kernels = numba.config.NUMBA_NUM_THREADS if kernels is None else kernels
    seen: dict[str, set] = {}

    def note(where):
        seen.setdefault(where, set()).add((threading.current_thread().name, numba.get_num_threads()))

    for cls, where in ((keyer.stages.PlanarKeyStage, "key"), (keyer.stages.EffectsStage, "effects")):
        def call(self, frame, _orig=cls.__call__, _where=where):
            note(_where)
            return _orig(self, frame)
        monkeypatch.setattr(cls, "__call__", call)
    write = keyer.encode.VideoSink.write

    def noted_write(self, frame):
        write(self, frame)
        note("encode")
        seen.setdefault("encoder", set()).add(self.stream.codec_context.thread_count)
    monkeypatch.setattr(keyer.encode.VideoSink, "write", noted_write)

    src = make_clip(tmp_path / "src.mp4", 3, width=64, height=48)
    before = numba.get_num_threads()
    job = Job(input=src, output=str(tmp_path / output),
              effects=tuple(parse_chain(effects)) if effects else ())
    with capture_logs() as events:
        assert run_job(job).frames_out == 3
    (start,) = [e for e in events if e["event"] == "job_start"]
    assert start["threads"] == {"cores": cores, "encoder": encoder, "kernels": kernels}
    assert seen["encoder"] == {encoder}
    main = threading.current_thread().name
    assert seen["encode"] == {(main, expected_kernels)}
    if effects:
        assert seen["key"] == {("keyer-key", expected_kernels)}
        assert seen["effects"] == {("keyer-process", expected_kernels)}
    else:
        assert seen["key"] == {("keyer-process", expected_kernels)}
    assert numba.get_num_threads() == before


def test_threads_on_the_command_line(tmp_path):
    from tests.conftest import run_cli

    src = make_clip(tmp_path / "src.mp4", 2, width=64, height=48)
    done = run_cli("run", src, "-o", tmp_path / "o.webm", "--threads", "3", "--log-format", "json")
    assert done.returncode == 0, done.stderr
    assert '"threads":{"cores":' in done.stderr.replace(" ", "") and '"encoder":3' in done.stderr.replace(" ", "")
    bad = run_cli("run", src, "-o", tmp_path / "p.webm", "--threads", "65")
    assert bad.returncode == 2 and "--threads" in bad.stderr and "Traceback" not in bad.stderr
    assert not (tmp_path / "p.webm").exists()
