"""The generic folder format: loading and validation messages; untrusted input (paths leaving the dataset root,
video ids, every field type- and range-checked, encoding, over-long lines); a manifest that is a FIFO."""
from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import GOOD, write_entry
from tests.helpers import cli, fifo_at, one_line_error, refused, without_blocking
from vava.core.errors import VavaError, quoted
from vava.core.records import MAX_FRAMES
from vava.pipeline.datasets import load_dataset
from vava.pipeline.datasets.folder import load_folder, write_manifest


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


# -- untrusted input: paths leaving the root, video ids, every field type- and range-checked, encoding


@pytest.mark.parametrize("kind", ["absolute", "dotdot", "symlink"])
def test_manifest_paths_leaving_the_root_are_refused_unless_allowed(tmp_path: Path, kind: str) -> None:
    outside = tmp_path / "outside.mp4"
    outside.write_bytes(b"secret")
    root = tmp_path / "data"
    root.mkdir()
    (root / "link.mp4").symlink_to(outside)
    path = {"absolute": str(outside), "dotdot": "../outside.mp4", "symlink": "link.mp4"}[kind]
    write_entry(root, path=path)
    shown = re.escape(quoted(path))  # a long path is cut in the middle, as every quoted value
    with pytest.raises(VavaError, match=rf"manifest.jsonl:1: video 'a': path {shown} leads outside the dataset "
                                        r"root .* \(pass allow_outside_root if that is intended\)$"):
        load_dataset("folder", root)
    [record] = load_dataset("folder", root, allow_outside_root=True)
    assert record.path == outside.resolve() and record.confined_to is None


@pytest.mark.parametrize(
    ("video_id", "message"),
    [(None, r"video id must be a string, got NoneType None"),
     (7, r"video id must be a string, got int 7"),
     ("a\u0000b", r"video id: 'a\\x00b' contains a control character"),
     ("a\nb", r"video id: 'a\\nb' contains a control character"),
     ("x" * 300, r"video id 'x{40}'\.\.\. is 300 bytes long \(at most 250: it names a folder and a lock file"),
     ("zarr.json", r"video id: 'zarr.json' is a reserved name")],
)
def test_video_ids_are_checked_when_the_manifest_is_read(tmp_path: Path, video_id: object, message: str) -> None:
    write_entry(tmp_path, id=video_id)
    with pytest.raises(VavaError, match=r"manifest.jsonl:1: " + message):
        load_folder(tmp_path)


@pytest.mark.parametrize(
    ("change", "message"),
    [({"action": None}, r"video 'a': action must be a non-empty string, got None"),
     ({"action": 3}, r"video 'a': action must be a non-empty string, got 3"),
     ({"path": None}, r"video 'a': path must be a non-empty string \(relative to the dataset root\), got None"),
     ({"path": "a\u0000.mp4"}, r"video 'a': path 'a\\x00.mp4' contains a NUL byte"),
     ({"phases": "abc"}, r"video 'a': phases must be a list of names \(strings\), got str"),
     ({"phases": [1, 2, 3]}, r"video 'a': phases must be a list of names \(strings\), got list"),
     ({"fps": float("nan")}, r"video 'a': fps must be a positive number, got nan"),
     ({"fps": float("inf")}, r"video 'a': fps must be a positive number, got inf"),
     ({"fps": True}, r"video 'a': fps must be a positive number, got True"),
     ({"labels": [0, 10**30], "phases": []}, r"video 'a': label 10{30} is above the largest allowed, 9999"),
     ({"labels": [0, 10_000], "phases": []}, r"video 'a': label 10000 is above the largest allowed, 9999"),
     ({"background_label": 3}, r"video 'a': background_label 3 is out of range \(0\.\.2\)"),
     ({"background_label": -1}, r"video 'a': background_label -1 is out of range \(0\.\.2\)"),
     ({"background_label": True}, r"video 'a': background_label must be an integer, got True"),
     ({"labels": [0] * (MAX_FRAMES + 1)},
      rf"video 'a': {MAX_FRAMES + 1} labels, more than the {MAX_FRAMES} frames a video may have")],
)
def test_manifest_fields_are_type_and_range_checked(tmp_path: Path, change: dict, message: str) -> None:
    write_entry(tmp_path, **change)
    with pytest.raises(VavaError, match=r"manifest.jsonl:1: " + message + "$"):
        load_folder(tmp_path)


def test_non_utf8_manifest_names_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "manifest.jsonl").write_bytes(json.dumps(GOOD).encode() + b'\n{"id": "caf\xe9"}\n')
    with pytest.raises(VavaError, match=r"manifest.jsonl:2: not UTF-8 text \(byte 0xe9 at column 12\); "
                                        r"save the manifest as UTF-8$"):
        load_folder(tmp_path)


def test_a_utf8_bom_is_accepted(tmp_path: Path) -> None:
    second = {**GOOD, "id": "b"}
    (tmp_path / "manifest.jsonl").write_bytes(b"\xef\xbb\xbf" + f"{json.dumps(GOOD)}\n{json.dumps(second)}\n".encode())
    assert [r.id for r in load_folder(tmp_path)] == ["a", "b"]


def test_an_over_long_manifest_line_is_refused_before_parsing(tmp_path: Path, monkeypatch) -> None:
    import vava.pipeline.datasets.folder as folder

    monkeypatch.setattr(folder, "MAX_LINE_BYTES", 2**20)
    write_entry(tmp_path, labels=[0] * 2**19)
    with pytest.raises(VavaError, match=r"manifest.jsonl:1: line longer than 1 MiB$"):
        load_folder(tmp_path)


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


# -- a manifest that is a FIFO ---------------------------------------------------------------------


def test_a_manifest_that_is_a_fifo_is_refused(tmp_path: Path) -> None:
    fifo = fifo_at(tmp_path / "manifest.jsonl")
    refused(without_blocking(lambda: cli("data", "info", "--root", tmp_path), fifo), fifo)
