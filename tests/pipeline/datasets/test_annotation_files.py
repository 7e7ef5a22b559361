"""Dataset annotation files (pipeline/datasets/annotation_files.py): one that is a FIFO is refused in one line,
by `data info` and `extract --dry-run`, never read forever."""
from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import cli, fifo_at, refused, without_blocking
from vava.pipeline.datasets import dataset


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
