"""Attacks found by a hostile pass over the hardened CLI: each test failed before its fix."""
from __future__ import annotations

import json
import re
from pathlib import Path

from click.testing import CliRunner

from vava.pipeline.cli import main

REPO = Path(__file__).resolve().parents[2]

TINY = ["--set", "model.conv_channels=8", "--set", "model.fc_channels=8", "--set", "model.embedding_dim=8",
        "--set", "data.frames_per_video=6", "--set", "data.batch_pairs=1"]


def cli(*args: object):
    return CliRunner().invoke(main, [str(a) for a in args])


def one_line_error(result, pattern: str) -> None:
    """The CLI failed with exit 1 and a single line matching `pattern`, no traceback."""
    assert result.exit_code == 1, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert re.search(pattern, result.stderr), result.stderr


def test_sweep_rebuilds_a_finished_run_whose_report_or_time_is_damaged(toy_features: Path, tmp_path: Path) -> None:
    plan = tmp_path / "plan.yaml"
    plan.write_text("runs:\n  a: {identity: true}\n  b: {identity: true}\n")
    out = tmp_path / "sweep"
    args = ("sweep", "--features", toy_features, "--plan", plan, "--out", out, "--device", "cpu")
    assert cli(*args).exit_code == 0
    (out / "a" / "report.json").write_text("[]")
    (out / "b" / "sweep_time.json").write_text("{}")
    result = cli(*args)
    assert result.exit_code == 0, result.output
    assert "reused" not in result.stderr
    assert re.search(r"\| a \| \d+ \|\n\| b \| \d+ \|", (out / "results.md").read_text())
    assert (out / "a" / "report.json").read_text().startswith("{")


def test_a_lone_surrogate_id_is_refused_before_extraction(tiny_dataset: Path, tmp_path: Path) -> None:
    """JSON lets an id hold "\\ud800"; that video used to fail late, on a UnicodeEncodeError in the cache."""
    manifest = tiny_dataset / "manifest.jsonl"
    entries = [json.loads(line) for line in manifest.read_text().splitlines()]
    entries[0]["id"] = "\ud800" + entries[0]["id"]
    manifest.write_text("".join(json.dumps(entry) + "\n" for entry in entries))  # ASCII: "\\ud800" escaped
    result = cli("extract", "--root", tiny_dataset, "--cache", tmp_path / "cache", "--weights", "random",
                 "--image-size", 64, "--device", "cpu", "--quiet")
    one_line_error(result, r"manifest\.jsonl:1: video id: '\\ud800.*' contains a lone surrogate")
    assert not (tmp_path / "cache").exists()


def test_a_fixture_folder_that_cannot_be_made_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("mine")
    out = tmp_path / "file" / "sub"
    result = cli("data", "fixture", "--dataset", "pouring", out)
    one_line_error(result, rf"^Error: OUT_DIR: cannot write the fixture into {out} \(Not a directory\)$")
    assert (tmp_path / "file").read_text() == "mine"


def test_a_dataset_option_given_twice_is_refused_not_overridden(tmp_path: Path) -> None:
    result = cli("data", "info", "--dataset", "penn_action", "--root", tmp_path,
                 "--dataset-option", "actions=squat", "--dataset-option", "actions=situp")
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert result.stderr.strip().splitlines()[-1] == (
        "Error: Invalid value for '--dataset-option': actions is given twice ('squat' and 'situp')")
