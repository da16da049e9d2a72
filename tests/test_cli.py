"""The command line as a user meets it: one clear line and the documented exit code for every
mistake, never a traceback; nothing clobbered."""
from __future__ import annotations

import json

import pytest

from tests.conftest import run_cli


def assert_clean_error(proc, code, *fragments):
    assert proc.returncode == code, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.startswith("keyer: error:")]
    assert len(lines) == 1, proc.stderr
    for frag in fragments:
        assert frag in lines[0], lines[0]


def test_version_and_help():
    assert run_cli("--version").stdout.startswith("keyer, version")
    helptext = run_cli("run", "--help").stdout
    assert "Examples:" in helptext and "--posterize-time" in helptext and "Exit codes" in helptext


def test_run_writes_output_and_json_logs(tmp_path, green_clip):
    out = tmp_path / "o.webm"
    log = tmp_path / "job.jsonl"
    proc = run_cli("run", green_clip, "-o", out, "--log-format", "json", "--log-file", log)
    assert proc.returncode == 0, proc.stderr
    events = [json.loads(line) for line in log.read_text().splitlines()]
    names = [e["event"] for e in events]
    assert names[0] == "job_start" and names[-1] == "job_end"
    assert {"stage_start", "stage_end", "frame_sample"} <= set(names)
    assert len({e["job_id"] for e in events}) == 1
    assert all(e["schema_version"] == 2 and "rss_mb" in e and "vms_mb" in e for e in events)
    assert all(e["timestamp"].endswith("Z") for e in events)
    stages = {e["stage"] for e in events if e["event"] == "stage_end"}
    assert {"decode", "key", "encode", "cleanup"} <= stages
    # stderr in json mode is JSON lines too (plus the final human summary line)
    for line in proc.stderr.splitlines()[:-1]:
        json.loads(line)


def test_missing_input(tmp_path):
    assert_clean_error(run_cli("run", tmp_path / "nope.mp4", "-o", tmp_path / "o.webm"), 3, "no such file")


def test_not_a_video(tmp_path):
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"\x00garbage" * 100)
    assert_clean_error(run_cli("run", bad, "-o", tmp_path / "o.webm"), 3, "bad.mp4")


def test_directory_input(tmp_path):
    assert_clean_error(run_cli("run", tmp_path, "-o", tmp_path / "o.webm"), 3, "directory")


def test_unknown_output_type(tmp_path, green_clip):
    assert_clean_error(run_cli("run", green_clip, "-o", tmp_path / "o.avi"), 2, ".avi")


def test_existing_output_needs_overwrite(tmp_path, green_clip):
    out = tmp_path / "o.webm"
    out.write_bytes(b"keep me")
    assert_clean_error(run_cli("run", green_clip, "-o", out), 4, "--overwrite")
    assert out.read_bytes() == b"keep me"
    assert run_cli("run", green_clip, "-o", out, "-y").returncode == 0


def test_output_is_input(tmp_path, green_clip):
    assert_clean_error(run_cli("run", green_clip, "-o", green_clip, "--overwrite"), 4, "is the input")


def test_output_folder_missing(tmp_path, green_clip):
    assert_clean_error(run_cli("run", green_clip, "-o", tmp_path / "no" / "o.webm"), 4, "does not exist")


@pytest.mark.parametrize("args, fragment", [
    (["--key", "purple"], "purple"),
    (["--similarity", "2"], "similarity"),
    (["--preset", "ultra"], "ultra"),
    (["--posterize-time", "-3"], "-3"),
    (["--memory-budget", "lots"], "lots"),
    (["--crf", "99"], "99"),
])
def test_bad_options(tmp_path, green_clip, args, fragment):
    proc = run_cli("run", green_clip, "-o", tmp_path / "o.webm", *args)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert fragment in proc.stderr


def test_over_budget_is_refused_with_a_size_that_fits(tmp_path, green_clip):
    proc = run_cli("run", green_clip, "-o", tmp_path / "o.webm", "--memory-budget", "100M")
    assert_clean_error(proc, 5, "budget")


def test_config_file_and_command_line_override(tmp_path, green_clip):
    cfg = tmp_path / "job.toml"
    cfg.write_text('preset = "ultra"\n')
    proc = run_cli("run", green_clip, "-o", tmp_path / "o.webm", "--config", cfg)
    assert proc.returncode == 2 and "ultra" in proc.stderr
    proc = run_cli("run", green_clip, "-o", tmp_path / "o.webm", "--config", cfg, "--preset", "fast")
    assert proc.returncode == 0, proc.stderr
    cfg.write_text('presett = "fast"\n')
    assert_clean_error(run_cli("run", green_clip, "-o", tmp_path / "p.webm", "--config", cfg), 2,
                       "presett", "did you mean 'preset'")


def test_probe_text_and_json(audio_clip):
    proc = run_cli("probe", audio_clip, "--json")
    assert proc.returncode == 0, proc.stderr
    d = json.loads(proc.stdout)
    assert d["width"] == 64 and d["height"] == 48 and d["fps"] == 24 and d["has_audio"]
    assert d["frames"] == 12 or d["frames_estimate"] == 12
    text = run_cli("probe", audio_clip).stdout
    assert "64x48" in text and "aac" in text


def test_no_progress_bar_when_not_a_terminal(tmp_path, green_clip):
    proc = run_cli("run", green_clip, "-o", tmp_path / "o.webm", "-q")
    assert proc.returncode == 0 and proc.stderr == ""


def test_effects_listing():
    proc = run_cli("effects")
    assert proc.returncode == 0
    for name in ("displacement", "multiply", "add", "surface-bevel", "alpha-bevel", "drop-shadow", "outline"):
        assert name in proc.stdout
    assert "0..1000 px" in proc.stdout


@pytest.mark.parametrize("chain, fragment", [
    ("drop-shadw", "did you mean 'drop-shadow'"),
    ("drop-shadow=softness=-2", "softness=-2 is outside 0..200 px"),
    ("multiply=texture=missing.png", "missing.png"),
])
def test_bad_effects_fail_before_decoding(tmp_path, green_clip, chain, fragment):
    proc = run_cli("run", green_clip, "-o", tmp_path / "o.webm", "--effects", chain, "--log-format", "json")
    assert_clean_error(proc, 2, fragment)
    assert "job_start" not in proc.stderr


def test_config_file_sets_effects(tmp_path, green_clip):
    cfg = tmp_path / "job.toml"
    cfg.write_text('effects = ["outline=width=2", "drop-shadow"]\nposterize_time = 12\n')
    log = tmp_path / "log.jsonl"
    proc = run_cli("run", green_clip, "-o", tmp_path / "o.webm", "--config", cfg, "--log-file", log)
    assert proc.returncode == 0, proc.stderr
    start = json.loads(log.read_text().splitlines()[0])
    assert start["settings"]["effects"] == ["outline", "drop-shadow"]
    assert start["settings"]["posterize_fps"] == 12


def test_output_named_like_a_file_that_is_a_folder_is_refused(tmp_path, green_clip):
    folder = tmp_path / "out.webm"
    folder.mkdir()
    (folder / "keep.txt").write_text("mine")
    assert_clean_error(run_cli("run", green_clip, "-o", folder), 4, "is a folder", "end the path with '/'")
    assert_clean_error(run_cli("run", green_clip, "-o", folder, "--overwrite"), 4, "is a folder")
    assert sorted(p.name for p in folder.iterdir()) == ["keep.txt"]
    # said with a trailing "/", the same folder takes a PNG sequence
    proc = run_cli("run", green_clip, "-o", f"{folder}/", "-q")
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in folder.iterdir())[:2] == ["00001.png", "00002.png"]


def test_a_folder_without_a_video_extension_is_a_png_sequence(tmp_path, green_clip):
    proc = run_cli("run", green_clip, "-o", tmp_path / "frames", "-q")
    assert proc.returncode == 0, proc.stderr
    assert len(list((tmp_path / "frames").glob("*.png"))) == 12


def test_keyer_warm_json_says_what_it_did_and_the_library_pages_it_holds():
    done = run_cli("warm", "--json", timeout=600)
    assert done.returncode == 0, done.stderr
    facts = json.loads(done.stdout.strip().splitlines()[-1])
    assert facts["compiled"] >= 0 and facts["seconds"] > 0
    assert facts["file_mb"] > 20      # av, numpy, OpenCV and llvmlite are mapped, at least
