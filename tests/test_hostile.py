"""Attacks found by a hostile pass over the hardened CLI: each test failed before its fix."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from pipeline.cli import main

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


@pytest.mark.parametrize("name", ["checkpoints", "plots"])
def test_a_file_in_place_of_a_run_subfolder_is_one_line(toy_features: Path, tmp_path: Path, name: str) -> None:
    run = tmp_path / "run"
    run.mkdir()
    (run / name).write_text("mine")
    result = cli("train", "--features", toy_features, "--out", run, "--steps", 1, "--device", "cpu", "--quiet",
                 "--force", *TINY)
    one_line_error(result, rf"--out: {re.escape(str(run / name))} is a file, where the run keeps a folder")
    assert (run / name).read_text() == "mine"
