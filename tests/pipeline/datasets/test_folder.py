"""The generic folder format: loading and validation messages."""
from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from vava.core.errors import VavaError
from vava.pipeline.datasets import load_dataset
from vava.pipeline.datasets.folder import load_folder, write_manifest

GOOD = {"id": "a", "path": "videos/a.mp4", "split": "train", "action": "pour", "labels": [0, 0, 1, 2],
        "phases": ["start", "pour", "end"], "fps": 30, "background_label": 2}


def write_lines(root: Path, lines: list[str]) -> None:
    root.mkdir(parents=True, exist_ok=True)
    (root / "manifest.jsonl").write_text("\n".join(lines) + "\n")


def test_round_trip(tmp_path: Path) -> None:
    second = {**GOOD, "id": "b", "split": "val", "path": "frames/b"}
    write_manifest(tmp_path, [GOOD, second])
    records = load_folder(tmp_path)
    assert [r.id for r in records] == ["a", "b"]
    a = records[0]
    assert a.path == (tmp_path / "videos/a.mp4").resolve()
    assert a.labels.dtype == np.int64 and a.labels.tolist() == [0, 0, 1, 2]
    assert a.num_frames == 4
    assert a.phases == ("start", "pour", "end") and a.fps == 30.0 and a.background_label == 2
    assert records[1].split == "val"
    assert a.flags is None


def test_flags_are_read_as_uint8_per_frame(tmp_path: Path) -> None:
    write_manifest(tmp_path, [{**GOOD, "flags": [0, 4, 6, 1]}])
    flags = load_folder(tmp_path)[0].flags
    assert flags.dtype == np.uint8 and flags.tolist() == [0, 4, 6, 1]


def test_registry_loads_folder_and_rejects_unknown_adapter(tmp_path: Path) -> None:
    write_manifest(tmp_path, [GOOD])
    assert [r.id for r in load_dataset("folder", tmp_path)] == ["a"]
    with pytest.raises(VavaError, match="unknown dataset 'pennaction'"):
        load_dataset("pennaction", tmp_path)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"split": "dev"}, r"manifest.jsonl:1: video 'a': unknown split 'dev' \(use one of train, val, test\)"),
        ({"labels": []}, r"video 'a': labels are empty \(zero-frame video\)"),
        ({"labels": [0, 1.5]}, r"video 'a': labels must be a list of integers"),
        ({"labels": [0, -2]}, r"video 'a': labels must be >= -1"),
        ({"labels": [0, 3]}, r"video 'a': label 3 has no name in phases \(3 given\)"),
        ({"fps": 0}, r"video 'a': fps must be a positive number"),
        ({"colour": "red"}, r"video 'a': unknown key\(s\) colour"),
        ({"id": "a/b"}, r"video id 'a/b' must be non-empty, contain no '/'"),
        ({"flags": [0, 1, 0]}, r"video 'a': 3 flags for 4 labels \(give one per frame\)$"),
        ({"flags": [0, 1, 32, 0]}, r"video 'a': flag 32 is not a sum of the flag bits \(background=1, repeated=2, "
                                   r"out_of_order=4, cutaway=8, distraction=16\), i.e. 0..31$"),
        ({"flags": [0, -1, 0, 0]}, r"video 'a': flag -1 is not a sum of the flag bits"),
        ({"flags": [0, True, 0, 0]}, r"video 'a': flags must be a list of integers \(one bit mask per frame\)$"),
        ({"flags": "0000"}, r"video 'a': flags must be a list of integers"),
    ],
)
def test_bad_entries_name_line_and_video(tmp_path: Path, change: dict, message: str) -> None:
    write_lines(tmp_path, [json.dumps({**GOOD, **change})])
    with pytest.raises(VavaError, match=message):
        load_folder(tmp_path)


def test_missing_keys_listed(tmp_path: Path) -> None:
    entry = {k: v for k, v in GOOD.items() if k not in ("split", "action")}
    write_lines(tmp_path, [json.dumps(entry)])
    with pytest.raises(VavaError, match=r":1: video 'a': missing key\(s\) split, action"):
        load_folder(tmp_path)


def test_labels_are_optional_and_test_is_a_split(tmp_path: Path) -> None:
    entry = {k: v for k, v in GOOD.items() if k != "labels"}
    write_lines(tmp_path, [json.dumps({**entry, "split": "test"})])
    (record,) = load_folder(tmp_path)
    assert record.labels is None and record.num_frames is None and record.split == "test"
    write_lines(tmp_path, [json.dumps({**entry, "flags": [0, 0]})])
    with pytest.raises(VavaError, match=r":1: video 'a': flags need labels"):
        load_folder(tmp_path)


def test_duplicate_ids(tmp_path: Path) -> None:
    write_lines(tmp_path, [json.dumps(GOOD), "", json.dumps(GOOD)])
    with pytest.raises(VavaError, match=r"manifest.jsonl:3: video 'a': duplicate id \(first on line 1\)"):
        load_folder(tmp_path)


def test_invalid_json_and_non_object(tmp_path: Path) -> None:
    write_lines(tmp_path, [json.dumps(GOOD), "{not json"])
    with pytest.raises(VavaError, match=r"manifest.jsonl:2: not valid JSON"):
        load_folder(tmp_path)
    write_lines(tmp_path, ["[1, 2]"])
    with pytest.raises(VavaError, match=r":1: expected a JSON object, got list"):
        load_folder(tmp_path)
    write_lines(tmp_path, ['{"id": ' + "[" * 100_000 + "]" * 100_000 + "}"])
    with pytest.raises(VavaError, match=r"manifest.jsonl:1: not valid JSON \(nested too deeply\)$"):
        load_folder(tmp_path)


def test_missing_root_manifest_and_empty(tmp_path: Path) -> None:
    with pytest.raises(VavaError, match="is not a directory"):
        load_folder(tmp_path / "nope")
    with pytest.raises(VavaError, match="manifest.jsonl: missing"):
        load_folder(tmp_path)
    write_lines(tmp_path, [""])
    with pytest.raises(VavaError, match="no videos listed"):
        load_folder(tmp_path)


# -- issue 16, point 15 ----------------------------------------------------------------------------
def test_a_key_given_twice_is_refused_not_last_wins(tmp_path: Path) -> None:
    root = tmp_path / "data"
    root.mkdir()
    (root / "manifest.jsonl").write_text('{"id": "a", "path": "a.mp4", "split": "train", "split": "val", '
                                         '"action": "x"}\n')
    with pytest.raises(VavaError, match=r"manifest.jsonl:1: key 'split' is given twice \(which one counts is "
                                        r"ambiguous\)$"):
        load_folder(root)


@pytest.mark.parametrize("entry", [
    {"id": "." + "x" * 50_000_000, "path": "a.mp4", "split": "train", "action": "x"},
    {"id": "a/" + "x" * 50_000_000, "path": "a.mp4", "split": "train", "action": "x"},
    {"id": "x" * 50_000_000, "split": "train", "action": "x"},
    {"id": "a", "path": "a.mp4", "split": "x" * 50_000_000, "action": "x"},
])
def test_a_huge_value_is_quoted_cut_short(tmp_path: Path, entry: dict) -> None:
    root = tmp_path / "data"
    root.mkdir()
    (root / "manifest.jsonl").write_text(json.dumps(entry) + "\n")
    with pytest.raises(VavaError) as caught:
        load_folder(root)
    message = str(caught.value)
    assert len(message) < len(str(root)) + 300 and re.search(r"'(\.|a/)?x{30,40}\.\.\.x{30,40}'", message), message
