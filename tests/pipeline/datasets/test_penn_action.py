"""Penn Action adapter: the fixture's records, skipped and excluded clips, the options, CARL's count
resampling (hand-computed), one-line errors for broken files, and extraction of the records."""
from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import scipy.io
from click.testing import CliRunner

from vava.cache.store import FeatureSet
from vava.core.errors import VavaError
from vava.pipeline.cli import main
from vava.pipeline.datasets import load_dataset
from vava.pipeline.datasets.penn_action import align_labels, resample_indices, write_fixture
from vava.stages.extract.run import ExtractOptions, extract

# id -> (split, action, labels of the kept frames); 0002 has no label file, 0010 is jump_rope.
EXPECTED = {
    "0001_baseball_pitch": ("train", "baseball_pitch", [0, 0, 1, 2, 3, 3]),
    "0003_baseball_pitch": ("val", "baseball_pitch", [0, 1, 1, 2, 2, 3]),
    "0004_squat": ("train", "squat", [0, 1, 1, 2, 3, 3]),
    "0005_squat": ("train", "squat", [0, 0, 1, 2, 2, 3]),  # 7 frames, 6 labels: frame 7 dropped
    "0006_squat": ("val", "squat", [0, 0, 1, 1, 2, 3]),
    "0007_situp": ("train", "situp", [0, 0, 0, 1, 1, 1]),
    "0008_situp": ("train", "situp", [0, 1, 1, 1, 0, 0]),
    "0009_situp": ("val", "situp", [0, 0, 1, 1, 1, 0]),
    "0011_baseball_pitch": ("train", "baseball_pitch", [0, 1, 2, 2, 3, 3]),
}


@pytest.fixture
def penn(tmp_path: Path) -> Path:
    root = tmp_path / "Penn_Action"
    write_fixture(root)
    return root


def load(root: Path, **options: str) -> dict:
    return {r.id: r for r in load_dataset("penn_action", root, options=options)}


def kept_labels(record) -> list[int]:
    return (record.labels if record.keep is None else record.labels[record.keep]).tolist()


def test_fixture_records(penn: Path) -> None:
    records = load(penn)
    assert list(records) == list(EXPECTED)  # clip order; 0002 (no labels) and 0010 (jump_rope) skipped
    for video_id, (split, action, labels) in EXPECTED.items():
        record = records[video_id]
        assert (record.split, record.action, kept_labels(record)) == (split, action, labels)
        assert record.path == (penn / "frames" / video_id[:4]).resolve() and record.fps == 30.0
        assert record.confined_to == penn.resolve() and record.num_frames == 6
    assert records["0001_baseball_pitch"].phases == ("phase_0", "phase_1", "phase_2", "phase_3")
    assert records["0007_situp"].phases == ("phase_0", "phase_1")
    squat = records["0005_squat"]
    assert squat.keep.tolist() == [True] * 6 + [False] and squat.labels.tolist() == [0, 0, 1, 2, 2, 3, -1]
    assert all(r.keep is None for key, r in records.items() if key != "0005_squat")


def data_info(root: Path, *options: str) -> list[str]:
    """The output lines of `vava data info` on the Penn Action copy at `root`."""
    args = [arg for option in options for arg in ("--dataset-option", option)]
    result = CliRunner().invoke(main, ["data", "info", "--dataset", "penn_action", "--root", str(root), *args])
    assert result.exit_code == 0, result.output
    return result.output.splitlines()


def test_data_info_counts_the_labelled_clips(penn: Path) -> None:
    result = CliRunner().invoke(main, ["data", "info", "--dataset", "penn_action", "--root", str(penn)])
    lines = [line for line in result.output.splitlines() if not line.startswith("note: ")]
    rows = [line.split()[:5] for line in lines]
    assert result.exit_code == 0 and rows[1:5] == [["baseball_pitch", "2", "1", "0", "18"],
                                                   ["squat", "2", "1", "0", "18"],
                                                   ["situp", "2", "1", "0", "18"],
                                                   ["total", "6", "3", "0", "54"]]
    # the clips of the release that are not read are accounted for, by reason
    assert lines[5:] == [
        "left out 2 of 11 videos of the release:",
        "  1: no phase-label file: 0002_baseball_pitch",
        "  1: actions without phase labels in the protocol (jump_rope, strum_guitar): 0010_jump_rope"]
    selected = CliRunner().invoke(main, ["data", "info", "--dataset", "penn_action", "--root", str(penn),
                                         "--dataset-option", "actions=squat,situp"])
    assert selected.output.splitlines()[4:6] == [
        "left out 5 of 11 videos of the release:",
        "  4: actions not selected by --dataset-option actions: 0001_baseball_pitch, 0002_baseball_pitch, "
        "0003_baseball_pitch, 0011_baseball_pitch"]


def test_actions_option(penn: Path) -> None:
    assert list(load(penn, actions="situp, squat")) == [k for k in EXPECTED if k.endswith(("situp", "squat"))]
    valid = ("baseball_pitch, baseball_swing, bench_press, bowl, clean_and_jerk, golf_swing, jumping_jacks, "
             "pushup, pullup, situp, squat, tennis_forehand, tennis_serve")
    for name in ("jump_rope", "squats"):
        with pytest.raises(VavaError) as caught:
            load(penn, actions=f"situp,{name}")
        assert str(caught.value) == (f"--dataset-option actions: unknown action {name!r} "
                                     f"(use all or a comma list of {valid})")
    with pytest.raises(VavaError, match=r"no clip of the selected actions \(bowl\) has a phase-label file"):
        load(penn, actions="bowl")


def test_resample_indices_are_carls_floor_rule() -> None:
    # floor(j * longer / shorter): 9 -> 6 gives 0, 1.5, 3, 4.5, 6, 7.5; 10 -> 4 gives 0, 2.5, 5, 7.5
    assert resample_indices(9, 6).tolist() == [0, 1, 3, 4, 6, 7]
    assert resample_indices(10, 4).tolist() == [0, 2, 5, 7]
    assert resample_indices(7, 6).tolist() == [0, 1, 2, 3, 4, 5]
    labels, keep = align_labels(np.array([3, 1, 2]), 3)
    assert labels.tolist() == [3, 1, 2] and keep is None


def test_more_labels_than_frames_keeps_the_labels_at_the_resampled_indices(penn: Path) -> None:
    np.save(penn / "phase_labels/train/baseball_pitch/0001.npy", np.array([0, 0, 1, 1, 2, 2, 3, 3, 3]))
    record = load(penn)["0001_baseball_pitch"]
    assert record.labels.tolist() == [0, 0, 1, 2, 3, 3] and record.keep is None  # labels 0, 1, 3, 4, 6, 7


def test_more_frames_than_labels_keeps_the_frames_at_the_resampled_indices(penn: Path) -> None:
    folder = penn / "frames" / "0004"
    for index in range(7, 11):
        shutil.copy(folder / "000001.jpg", folder / f"{index:06d}.jpg")
    np.save(penn / "phase_labels/train/squat/0004.npy", np.array([0, 1, 2, 3]))
    record = load(penn)["0004_squat"]
    assert np.flatnonzero(record.keep).tolist() == [0, 2, 5, 7]
    assert record.labels.tolist() == [0, -1, 1, -1, -1, 2, -1, 3, -1, -1] and record.num_frames == 4


def test_on_mismatch_error_names_the_clip_and_both_counts(penn: Path) -> None:
    with pytest.raises(VavaError) as caught:
        load(penn, on_mismatch="error")
    assert str(caught.value) == (
        f"clip 0005 (squat): 7 frames in {(penn / 'frames/0005').resolve()} but 6 labels in "
        f"{(penn / 'phase_labels/train/squat/0005.npy').resolve()} "
        "(--dataset-option on_mismatch=resample matches them as CARL does)")
    with pytest.raises(VavaError, match=r"^--dataset-option on_mismatch=pad: not one of resample, error$"):
        load(penn, on_mismatch="pad")


@pytest.mark.parametrize(("fields", "message"), [
    ({"action": "squat", "nframes": 6}, "field 'train' missing"),
    ({"train": 1, "nframes": 6}, "field 'action' missing"),
    ({"action": "squat", "train": 0}, "field 'train' is 0, expected 1 (train) or -1 (test, used as val)"),
    ({"action": "squatting", "train": 1}, "field 'action' is 'squatting', not a Penn Action action"),
])
def test_a_missing_or_malformed_mat_field_is_named(penn: Path, fields: dict, message: str) -> None:
    mat = penn / "labels" / "0004.mat"
    scipy.io.savemat(mat, fields)
    with pytest.raises(VavaError) as caught:
        load(penn)
    assert str(caught.value) == f"{mat.resolve()}: {message}"


def test_unreadable_or_missing_annotation(penn: Path) -> None:
    mat = penn / "labels" / "0004.mat"
    mat.write_bytes(b"not a mat file")
    with pytest.raises(VavaError, match=rf"^{re.escape(str(mat.resolve()))}: not a readable MATLAB v5 file \("):
        load(penn)
    mat.unlink()
    with pytest.raises(VavaError, match=rf"^{re.escape(str(mat.resolve()))}: annotation file missing \(clip 0004 "):
        load(penn)


@pytest.mark.parametrize(("labels", "message"), [
    (np.array([0, 1, 4, 4, 0, 0]), "label 4 is out of range (this action has 4 phases: 0..3)"),
    (np.array([0, -1, 1, 1, 2, 3]), "label -1 is out of range (this action has 4 phases: 0..3)"),
    (np.array([0.0, 1.0]), "expected a 1-D integer array of phase ids, got float64 of shape (2,)"),
    (np.zeros((6, 1), dtype=np.int64), "expected a 1-D integer array of phase ids, got int64 of shape (6, 1)"),
    (np.array([], dtype=np.int64), "0 labels (expected 1 to 1000000)"),
])
def test_a_bad_label_file_is_named(penn: Path, labels: np.ndarray, message: str) -> None:
    path = penn / "phase_labels/train/squat/0004.npy"
    np.save(path, labels)
    with pytest.raises(VavaError) as caught:
        load(penn)
    assert str(caught.value) == f"{path.resolve()}: {message}"


def test_a_pickled_label_file_is_never_unpickled(penn: Path) -> None:
    path = penn / "phase_labels/train/squat/0004.npy"
    np.save(path, np.array([{"labels": [0, 1]}], dtype=object), allow_pickle=True)
    with pytest.raises(VavaError, match=rf"^{re.escape(str(path.resolve()))}: not a readable \.npy array \("):
        load(penn)


def test_a_npz_archive_named_npy_is_refused(penn: Path) -> None:
    path = penn / "phase_labels/train/squat/0004.npy"
    with path.open("wb") as handle:  # np.savez to a handle keeps the .npy name
        np.savez(handle, labels=np.array([0, 1, 1, 2, 3, 3]))
    with pytest.raises(VavaError) as caught:
        load(penn)
    assert str(caught.value) == f"{path.resolve()}: a .npz archive, not a .npy array"


def test_a_label_file_that_is_no_regular_file_is_refused_unread(penn: Path) -> None:
    path = penn / "phase_labels/train/squat/0004.npy"
    path.unlink()
    os.mkfifo(path)  # reading it would block forever
    with pytest.raises(VavaError) as caught:
        load(penn)
    assert str(caught.value) == f"{path}: not a regular file"


def test_label_files_are_found_by_clip_number(penn: Path) -> None:
    """Copies of the labels spell some action folders the TCC way (`squats`): only the clip number counts."""
    labels = penn / "phase_labels" / "val"
    (labels / "squats").mkdir()
    (labels / "squat" / "0006.npy").rename(labels / "squats" / "0006.npy")
    assert kept_labels(load(penn)["0006_squat"]) == EXPECTED["0006_squat"][2]
    shutil.copy(labels / "squats" / "0006.npy", penn / "phase_labels/train/squat/0006.npy")
    with pytest.raises(VavaError, match=r"0006\.npy: clip 0006 already has phase labels in "):
        load(penn)


def test_the_split_comes_from_the_label_folder_as_carl_takes_it(penn: Path) -> None:
    """The phase labels as CARL reads them (`dataset_preparation/penn_action_to_tfrecords.py`: every
    `<label_dir>/<split>/<action>/<NNNN>.npy`, the split of a clip being the folder its file is in) beside
    the release's `.mat` files (`scipy.io.savemat`, `train` 1 or -1). Clip 0006 has `train` = -1 but its
    labels under `train/`; 0003 has `train` = -1 and its labels under `val/`, where both agree."""
    labels = penn / "phase_labels"
    (labels / "val" / "squat" / "0006.npy").rename(labels / "train" / "squat" / "0006.npy")
    assert scipy.io.loadmat(penn / "labels" / "0006.mat")["train"].item() == -1
    by_folder = load(penn)
    assert by_folder["0006_squat"].split == "train" and by_folder["0003_baseball_pitch"].split == "val"
    assert {v: r.split for v, r in load(penn, split="labels").items()} == {v: r.split for v, r in by_folder.items()}
    by_flag = load(penn, split="mat")
    assert by_flag["0006_squat"].split == "val"
    assert {v for v in by_flag if by_flag[v].split != by_folder[v].split} == {"0006_squat"}
    note = ("note: penn_action: 1 clip(s) are in one split by their label folder and in the other by their .mat "
            "train flag; split={} follows the {}: 0006 (label folder train, .mat val)")
    assert note.format("labels", "label folder") in data_info(penn)
    assert note.format("mat", ".mat train flag") in data_info(penn, "split=mat")
    with pytest.raises(VavaError, match=r"^--dataset-option split=folder: not one of labels, mat$"):
        load(penn, split="folder")


def test_no_note_when_the_label_folder_and_the_flag_agree(penn: Path) -> None:
    assert not any("label folder" in line for line in data_info(penn))


def test_phase_label_folder_option_and_root_confinement(penn: Path, tmp_path: Path) -> None:
    outside = tmp_path / "labels_elsewhere"
    shutil.move(penn / "phase_labels", outside)
    with pytest.raises(VavaError, match=r"phase_labels: phase-label folder not found \(the per-frame labels"):
        load(penn)
    with pytest.raises(VavaError, match=r"phase_labels leads outside the dataset root .*\(pass allow_outside_root "):
        load(penn, phase_labels=str(outside))
    records = load_dataset("penn_action", penn, allow_outside_root=True, options={"phase_labels": str(outside)})
    assert [r.id for r in records] == list(EXPECTED) and all(r.confined_to is None for r in records)
    shutil.move(outside, penn / "my_labels")
    assert list(load(penn, phase_labels="my_labels")) == list(EXPECTED)


def test_a_symlinked_label_file_leading_out_of_the_root_is_refused(penn: Path, tmp_path: Path) -> None:
    path = penn / "phase_labels/train/squat/0004.npy"
    shutil.move(path, tmp_path / "0004.npy")
    path.symlink_to(tmp_path / "0004.npy")
    with pytest.raises(VavaError, match=rf"^{re.escape(str(path))}: phase-label file leads outside the dataset root"):
        load(penn)


def test_a_missing_frame_folder_is_named(penn: Path) -> None:
    shutil.rmtree(penn / "frames" / "0007")
    with pytest.raises(VavaError, match=r"frames/0007: frame folder of clip 0007 missing$"):
        load(penn)


def test_extracted_labels_are_the_resampled_ones(penn: Path, tmp_path: Path) -> None:
    records = list(load(penn).values())
    summary = extract(records, tmp_path / "cache", ExtractOptions(weights="random", image_size=32, progress=False))
    assert summary.ok and sorted(summary.extracted) == sorted(EXPECTED) and summary.frames == 54
    features = FeatureSet.open(summary.path)
    for video_id, (split, action, labels) in EXPECTED.items():
        assert features.labels(video_id).tolist() == labels
        assert features.frame_index(video_id).tolist() == list(range(6))
        video = features.video(video_id)
        assert (video.split, video.action, video.fps) == (split, action, 30.0)
