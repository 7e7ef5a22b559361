"""Split files: written per split in record order, never over an existing file or through a symlink; read
back with one-line errors."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from vava.core.errors import VavaError
from vava.core.records import VideoRecord
from vava.pipeline.datasets.splits import read_split, write_split


def records(*splits: str) -> list[VideoRecord]:
    return [VideoRecord(f"v{i}", Path(f"v{i}.mp4"), split, "a", np.zeros(3, np.int64)) for i, split in enumerate(splits)]


def test_write_then_read(tmp_path: Path) -> None:
    path = write_split(records("val", "train", "val", "test"), tmp_path / "split.json")
    assert json.loads(path.read_text()) == {"train": ["v1"], "val": ["v0", "v2"], "test": ["v3"]}
    assert read_split(path) == {"v1": "train", "v0": "val", "v2": "val", "v3": "test"}


def test_write_refuses_existing_files_symlinks_and_missing_folders(tmp_path: Path) -> None:
    target = tmp_path / "elsewhere.json"
    (tmp_path / "link.json").symlink_to(target)  # dangling: writing through it would create `target`
    with pytest.raises(VavaError, match=r"link.json: is a symlink; give a new file to write the split to$"):
        write_split(records("train"), tmp_path / "link.json")
    assert not target.exists()
    (tmp_path / "old.json").write_text("keep me")
    with pytest.raises(VavaError, match=r"old.json: already exists; give a new file to write the split to$"):
        write_split(records("train"), tmp_path / "old.json")
    assert (tmp_path / "old.json").read_text() == "keep me"
    with pytest.raises(VavaError, match=r"split.json: the folder .*no-such-folder does not exist$"):
        write_split(records("train"), tmp_path / "no-such-folder" / "split.json")


@pytest.mark.parametrize(("content", "message"), [
    ('["a"]', 'expected an object {"train": [ids], "val": [ids]}'),
    ('{"dev": ["a"]}', "unknown split 'dev' (use train, val, test)"),
    ('{"train": "a"}', "'train' must be a list of video ids (strings)"),
    ('{"train": ["a"], "val": ["b", "a"]}', "video 'a' is listed twice (train and val)"),
    ('{"train": [', "not valid JSON (Expecting value at line 1, column 12)"),
    ("[" * 100_000 + "]" * 100_000, "not valid JSON (nested too deeply)"),  # json's recursion limit
])
def test_read_errors_name_the_file(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "split.json"
    path.write_text(content)
    with pytest.raises(VavaError) as caught:
        read_split(path)
    assert str(caught.value) == f"{path}: {message}"
    with pytest.raises(VavaError, match=r"missing.json: missing \(the split file given as split_file\)$"):
        read_split(tmp_path / "missing.json")
