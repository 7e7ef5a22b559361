"""The zarr feature store: writing, completion, reading frames, info and verification."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.conftest import toy_inputs
from vava.cache.inspect import describe, verify
from vava.cache.locks import creation_lock, set_lock, video_lock
from vava.cache.store import FRAMES_PER_SHARD, FeatureSet, open_feature_sets, remove_feature_set
from vava.core.errors import VavaError

SHAPE = (8, 2, 2)


def new_set(tmp_path: Path, name: str = "fp0") -> FeatureSet:
    return FeatureSet.create(tmp_path / name, name, toy_inputs(2), {"dataset": {"root": "/data"}})


def write(fs: FeatureSet, video_id: str, frames: int, seed: int = 0, block: int = 10) -> np.ndarray:
    data = np.random.default_rng(seed).standard_normal((frames, *SHAPE)).astype(np.float16)
    writer = fs.begin_video(video_id, SHAPE, {"split": "train", "action": "a", "phases": ["x", "y"]})
    for start in range(0, frames, block):
        writer.append(data[start:start + block])
    writer.finish(np.arange(frames) % 2, np.arange(frames), {"decoded_frames": frames, "fps": 15.0})
    return data


def test_round_trip_and_random_frame_reads(tmp_path: Path) -> None:
    fs = new_set(tmp_path)
    data = write(fs, "a", FRAMES_PER_SHARD + 9)
    again = FeatureSet.open(tmp_path / "fp0")
    assert again.fingerprint == "fp0" and again.attrs["dataset"] == {"root": "/data"}
    video = again.video("a")
    assert (video.num_frames, video.decoded_frames, video.split, video.phases) == (41, 41, "train", ("x", "y"))
    assert np.array_equal(again.read("a"), data)
    picks = [40, 3, 3, 0, 33]  # unsorted, repeated, across shards
    assert np.array_equal(again.read("a", picks), data[picks])
    assert np.array_equal(again.read("a", slice(5, 9)), data[5:9])
    assert again.labels("a").tolist() == (np.arange(41) % 2).tolist()
    assert again.frame_shape("a") == SHAPE
    with pytest.raises(IndexError, match="has 41 frames"):
        again.read("a", [41])
    loaded = again.load(device="cpu")
    assert set(loaded) == {"a"} and loaded["a"].shape == (41, *SHAPE)


def test_incomplete_video_is_never_listed_or_read(tmp_path: Path) -> None:
    fs = new_set(tmp_path)
    write(fs, "done", 5)
    writer = fs.begin_video("half", SHAPE, {"split": "val", "action": "a"})
    writer.append(np.zeros((4, *SHAPE), np.float16))  # killed before finish()
    assert [v.id for v in fs.videos()] == ["done"]
    assert [v.id for v in fs.videos(include_incomplete=True)] == ["done", "half"]
    assert not fs.is_complete("half") and fs.is_complete("done") and not fs.is_complete("absent")
    with pytest.raises(VavaError, match="video 'half' is incomplete"):
        fs.read("half")
    with pytest.raises(VavaError, match="no video 'absent'"):
        fs.labels("absent")
    # restarting the video drops the partial data
    data = write(fs, "half", 3, seed=1)
    assert np.array_equal(fs.read("half"), data)


def test_finish_cuts_to_label_count(tmp_path: Path) -> None:
    fs = new_set(tmp_path)
    writer = fs.begin_video("a", SHAPE, {})
    data = np.ones((12, *SHAPE), np.float16)
    writer.append(data)
    writer.finish(np.zeros(10, np.int64), np.arange(10), {})
    assert fs.read("a").shape == (10, *SHAPE)


def test_describe_verify_and_remove(tmp_path: Path) -> None:
    fs = new_set(tmp_path)
    write(fs, "a", 20)
    write(fs, "b", 35, seed=2)
    fs.begin_video("c", SHAPE, {}).append(np.zeros((2, *SHAPE), np.float16))
    info = describe(fs)
    assert (info["videos_complete"], info["videos_incomplete"], info["frames"]) == (2, 1, 55)
    assert info["bytes_raw_float16"] == 55 * 32 * 2 and info["bytes_on_disk"] > 0
    report = verify(fs)
    assert report.checked == 2 and report.incomplete == ["c"] and not report.damaged and not report.ok

    shard = next((tmp_path / "fp0" / "videos" / "b" / "features").rglob("c/1/*/*/*"))
    shard.write_bytes(b"\x00" * 40)  # damage the second shard of video b
    report = verify(FeatureSet.open(tmp_path / "fp0"))
    assert list(report.damaged) == ["b"] and "unreadable" in report.damaged["b"]

    assert [s.fingerprint for s in open_feature_sets(tmp_path)] == ["fp0"]
    remove_feature_set(tmp_path / "fp0")
    assert open_feature_sets(tmp_path) == []


def test_open_rejects_non_feature_sets(tmp_path: Path) -> None:
    with pytest.raises(VavaError, match="not a feature set"):
        FeatureSet.open(tmp_path)
    with pytest.raises(VavaError, match="does not exist"):
        open_feature_sets(tmp_path / "missing")


def test_flags_are_stored_checksummed_when_given(tmp_path: Path) -> None:
    fs = new_set(tmp_path)
    flags = np.array([0, 1, 2, 4, 6, 0], dtype=np.uint8)
    writer = fs.begin_video("f", SHAPE, {})
    writer.append(np.zeros((6, *SHAPE), np.float16))
    writer.finish(np.zeros(6, np.int64), np.arange(6), {}, flags)
    write(fs, "plain", 4)
    again = FeatureSet.open(fs.path)
    assert again.flags("f").dtype == np.uint8 and again.flags("f").tolist() == flags.tolist()
    assert again.flags("plain").tolist() == [0, 0, 0, 0]
    (fs.path / "videos/f/flags/c/0").unlink()  # its size is recorded like every other file's
    with pytest.raises(VavaError, match="video 'f' is damaged: flags/c/0 is missing"):
        FeatureSet.open(fs.path).flags("f")
    bad = fs.begin_video("bad", SHAPE, {})
    bad.append(np.zeros((3, *SHAPE), np.float16))
    with pytest.raises(ValueError, match="2 flags for 3 labels"):
        bad.finish(np.zeros(3, np.int64), np.arange(3), {}, flags[:2])


def test_ids_starting_with_two_underscores_are_stored_under_an_escaped_name(tmp_path: Path) -> None:
    fs = new_set(tmp_path)
    youtube = write(fs, "__9c5VYjqsw", 3, seed=1)  # a real YouTube id; zarr reserves names starting with "__"
    lookalike = write(fs, "%5F_9c5VYjqsw", 2, seed=2)  # an id spelled like the escaped name stays apart
    write(fs, "b", 2)
    assert sorted(p.name for p in (fs.path / "videos").iterdir() if p.is_dir()) == \
        ["%255F_9c5VYjqsw", "%5F_9c5VYjqsw", "b"]
    again = FeatureSet.open(fs.path)
    assert [v.id for v in again.videos()] == ["%5F_9c5VYjqsw", "__9c5VYjqsw", "b"]
    assert np.array_equal(again.read("__9c5VYjqsw"), youtube) and np.array_equal(again.read("%5F_9c5VYjqsw"), lookalike)
    report = verify(again)
    assert again.file_problem("__9c5VYjqsw") is None and report.ok and report.checked == 3
    with fs.writing():
        fs.remove_video("__9c5VYjqsw")
    assert [v.id for v in FeatureSet.open(fs.path).videos()] == ["%5F_9c5VYjqsw", "b"]


def test_a_folder_no_id_is_stored_under_is_listed_as_stray(tmp_path: Path) -> None:
    fs = new_set(tmp_path)
    write(fs, "a", 2)
    (fs.path / "videos" / "%zz").mkdir()
    assert [(v.id, v.problem) for v in fs.videos(include_incomplete=True)] == [
        ("%zz", "stray folder (its name is no video id's stored name)"), ("a", None)]
    assert [v.id for v in fs.videos()] == ["a"]


def test_no_video_id_names_the_sets_own_locks(tmp_path: Path) -> None:
    fs = new_set(tmp_path)
    for video_id, owner in (("set", set_lock(fs.path, shared=True)), ("create", creation_lock(fs.path))):
        assert video_lock(fs.path, video_id).path != owner.path
    assert video_lock(fs.path, "__x").path.name == "%5F_x.lock"
