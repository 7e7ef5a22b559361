"""A FIFO (or device, or folder) where the tool expects a file it reads is a one-line error, never a hang:
dataset annotation files, the CSV files of `data manifest`, the metadata of a feature set and the files
of a run folder. Every call runs through `without_blocking`, so a regression fails instead of hanging."""
from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.conftest import make_folder_dataset
from tests.helpers import without_blocking
from vava.core.errors import VavaError
from vava.pipeline.cli import main
from vava.pipeline.datasets import dataset


def cli(*args: object):
    return CliRunner().invoke(main, [str(a) for a in args])


def fifo_at(path: Path) -> Path:
    path.unlink(missing_ok=True)
    os.mkfifo(path)
    return path


def refused(result, fifo: Path) -> None:
    """Exit 1 with the one line that names the FIFO."""
    assert result.exit_code == 1, result.output
    assert result.stderr == f"Error: {fifo}: not a regular file (a FIFO); only plain files are read\n"


# -- the helper ------------------------------------------------------------------------------------


# -- dataset annotation files ----------------------------------------------------------------------


@pytest.mark.parametrize(("name", "member"), [
    ("coin", "COIN.json"),
    ("ikea_asm", "gt_segments.json"),
    ("ikea_asm", "indexing_files/train_cross_env.txt"),
    ("ikea_asm", "indexing_files/atomic_action_list.txt"),
])
@pytest.mark.parametrize("command", ["info", "dry-run"])
def test_an_annotation_file_that_is_a_fifo_is_refused(tmp_path: Path, name: str, member: str, command: str) -> None:
    root = tmp_path / name
    dataset(name).fixture(root)
    fifo = fifo_at(root / member)
    args = (["data", "info"] if command == "info" else
            ["extract", "--dry-run", "--cache", tmp_path / "cache", "--weights", "random", "--image-size", 32])
    refused(without_blocking(lambda: cli(*args, "--dataset", name, "--root", root), fifo), fifo)


@pytest.mark.parametrize("option", ["--segments", "--split-by"])
def test_a_csv_file_of_data_manifest_that_is_a_fifo_is_refused(tmp_path: Path, option: str) -> None:
    make_folder_dataset(tmp_path / "data", [8, 9])
    fifo = fifo_at(tmp_path / "given.csv")
    out = tmp_path / "data" / "videos" / "manifest.jsonl"
    result = without_blocking(lambda: cli("data", "manifest", out.parent, "--out", out, option, fifo), fifo)
    refused(result, fifo)
    assert not out.exists()


def test_a_manifest_that_is_a_fifo_is_refused(tmp_path: Path) -> None:
    fifo = fifo_at(tmp_path / "manifest.jsonl")
    refused(without_blocking(lambda: cli("data", "info", "--root", tmp_path), fifo), fifo)


# -- feature sets and run folders ------------------------------------------------------------------


@pytest.mark.parametrize("name", ["report.json", "sweep_time.json"])
def test_a_run_file_that_is_a_fifo_is_refused_or_rebuilt(tmp_path: Path, name: str) -> None:
    from vava.pipeline.sweep import recorded_seconds
    from vava.stages.evaluate.report import load_comparable_report

    fifo = fifo_at(tmp_path / name)
    if name == "report.json":
        with pytest.raises(VavaError, match=re.escape(f"{fifo}: not a regular file (a FIFO)")):
            without_blocking(lambda: load_comparable_report(tmp_path), fifo)
    else:  # an unreadable time means "not finished": the sweep runs it again
        assert without_blocking(lambda: recorded_seconds(tmp_path), fifo) is None
