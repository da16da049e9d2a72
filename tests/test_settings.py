"""Each setting is declared once (``keyer.settings``): the command line, the library and the
config file accept and refuse exactly the same values, with the same message."""
from __future__ import annotations

import json

import pytest

from keyer.errors import UsageProblem
from keyer.params import params_of
from keyer.settings import SECTIONS, EncodeSettings, Job, KeySettings
from tests.conftest import run_cli


def test_every_declared_setting_is_an_option_and_every_option_a_setting():
    from keyer.cli import run

    declared = {(p.option or f"--{name}") for cls in SECTIONS.values()
                for name, (_, p) in params_of(cls).items()}
    options = {o for p in run.params for o in p.opts if o.startswith("--")}
    assert options - declared == {"--output", "--config", "--log-format", "--log-file", "--quiet",
                                  "--verbose"}
    assert declared <= options


@pytest.mark.parametrize("option, value, make, message", [
    ("--softness", "0.005", lambda: KeySettings(softness=0.005), "--softness=0.005 is outside 0.01..1"),
    ("--denoise", "11", lambda: KeySettings(denoise=11), "--denoise=11 is outside 0..10 px"),
    ("--spill-limit", "mean", lambda: KeySettings(spill_limit="mean"),
     "--spill-limit=mean is not one of max|average|min; did you mean 'min'?"),
    ("--crf", "64", lambda: EncodeSettings(crf=64), "--crf=64 is outside 0..63"),
    ("--pad", "-1", lambda: Job(input="a", output="b", pad=-1), "--pad=-1 is outside 0..2000 px"),
    ("--posterize-time", "0", lambda: Job(input="a", output="b", posterize_fps=0),
     "--posterize-time=0 is outside 0.001..1000 fps"),
])
def test_library_and_command_line_refuse_alike(tmp_path, green_clip, option, value, make, message):
    with pytest.raises(UsageProblem) as info:
        make()
    assert str(info.value) == message
    proc = run_cli("run", green_clip, "-o", tmp_path / "o.webm", option, value)
    assert proc.returncode == 2
    assert proc.stderr == f"keyer: error: {message}\n"


def test_a_negated_flag_in_the_config_file_means_what_the_flag_means(tmp_path, green_clip):
    cfg = tmp_path / "job.toml"
    cfg.write_text("global-key = true\nno_audio = true\nmax-duration = 30\n")
    log = tmp_path / "log.jsonl"
    proc = run_cli("run", green_clip, "-o", tmp_path / "o.webm", "--config", cfg, "--log-file", log)
    assert proc.returncode == 0, proc.stderr
    settings = json.loads(log.read_text().splitlines()[0])["settings"]
    assert settings["key"]["local"] is False and settings["audio"] is False
    assert settings["max_duration"] == 30


def test_python_api_takes_text_as_the_command_line_does():
    job = Job(input="a.mp4", output="b.webm", effects="outline=width=2", posterize_fps="30000/1001",
              memory_budget=512 * 1024 * 1024)
    assert [type(e).__name__ for e in job.effects] == ["Outline"] and job.effects[0].width == 2
    assert job.posterize_fps.numerator == 30000 and job.posterize_fps.denominator == 1001
