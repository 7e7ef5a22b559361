"""The feature set in object storage, against a real S3-compatible server (SeaweedFS, `tests/s3_server.py`)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.conftest import write_toy_features
from vava.cache.inspect import describe, verify
from vava.cache.store import DamagedVideo, FeatureSet, remove_feature_set, scan_cache
from vava.core.errors import VavaError
from vava.core.location import RemotePath, as_location


@pytest.fixture
def local_and_remote(tmp_path: Path, s3_prefix: str) -> tuple[FeatureSet, FeatureSet]:
    """The same toy feature set written to a local folder and to object storage."""
    local = write_toy_features(tmp_path / "cache" / "toyfeatures00000")
    remote = write_toy_features(as_location(f"{s3_prefix}/cache/toyfeatures00000"))
    return FeatureSet.open(local), FeatureSet.open(str(remote))


def test_a_feature_set_in_object_storage_reads_back_what_was_written(local_and_remote) -> None:
    local, remote = local_and_remote
    assert isinstance(remote.path, RemotePath) and str(remote.path).startswith("s3://")
    assert [v.id for v in remote.videos()] == [v.id for v in local.videos()] == [f"toy{i}" for i in range(6)]
    for video in local.videos():
        np.testing.assert_array_equal(remote.read(video.id), local.read(video.id))
        np.testing.assert_array_equal(remote.read(video.id, [5, 0, 5]), local.read(video.id, [5, 0, 5]))
        np.testing.assert_array_equal(remote.labels(video.id), local.labels(video.id))
        # the same bytes: every file's size, recorded at completion, is the local one
        assert remote._video_group(video.id).attrs["files"] == local._video_group(video.id).attrs["files"]
    local_info, remote_info = describe(local), describe(remote)
    assert remote_info["bytes_on_disk"] == local_info["bytes_on_disk"] > 0
    unplaced = ("path", "created")
    assert {k: v for k, v in remote_info.items() if k not in unplaced} == {
        k: v for k, v in local_info.items() if k not in unplaced}
    assert verify(remote).ok and verify(remote).checked == 6


def test_the_cache_root_in_object_storage_lists_its_feature_sets(local_and_remote, s3_prefix: str) -> None:
    sets, skipped = scan_cache(f"{s3_prefix}/cache")
    assert [str(s.path) for s in sets] == [f"{s3_prefix}/cache/toyfeatures00000"] and skipped == {}
    with pytest.raises(VavaError, match=f"^cache folder {s3_prefix}/nothing does not exist$"):
        scan_cache(f"{s3_prefix}/nothing")
    with pytest.raises(VavaError, match=r"not a feature set \(no zarr.json"):
        FeatureSet.open(f"{s3_prefix}/cache")


def test_a_missing_shard_in_object_storage_is_damage_not_zeros(local_and_remote) -> None:
    _, remote = local_and_remote
    path = remote.path
    shard = next(name for name in (path / "videos" / "toy1").sizes() if name.startswith("features/c/"))
    path.fs.rm(f"{path.key}/videos/toy1/{shard}")
    reopened = FeatureSet.open(str(path))
    with pytest.raises(DamagedVideo, match=f"{shard} is missing"):
        reopened.read("toy1")
    report = verify(reopened)
    assert report.damaged == {"toy1": f"unreadable ({shard} is missing)"} and report.checked == 6


def test_a_video_left_unfinished_in_object_storage_is_incomplete_and_rewritten_whole(s3_prefix: str) -> None:
    path = write_toy_features(as_location(f"{s3_prefix}/cache/toyfeatures00000"), lengths=(30, 36))
    feature_set = FeatureSet.open(path)
    writer = feature_set.begin_video("toy0", (16, 2, 2), {"split": "train", "action": "a", "phases": ["p0"]})
    writer.append(np.ones((40, 16, 2, 2), np.float16))  # more frames than before, never finished
    assert [v.id for v in FeatureSet.open(path).videos()] == ["toy1"]
    assert verify(FeatureSet.open(path)).incomplete == ["toy0"]
    writer = feature_set.begin_video("toy0", (16, 2, 2), {"split": "train", "action": "a", "phases": ["p0"]})
    writer.append(np.full((3, 16, 2, 2), 2, np.float16))
    writer.finish(np.zeros(3, np.int64), np.arange(3), {"decoded_frames": 3, "fps": 15.0})
    reopened = FeatureSet.open(path)
    np.testing.assert_array_equal(reopened.read("toy0"), np.full((3, 16, 2, 2), 2, np.float16))
    # nothing is left of the longer first attempt (40 frames: two shards): the set holds what its record lists
    stored = (path / "videos" / "toy0").sizes()
    assert [name for name in stored if name.startswith("features/c/")] == ["features/c/0/0/0/0"]
    assert reopened._video_group("toy0").attrs["files"] == {k: v for k, v in stored.items() if k != "zarr.json"}
    assert verify(reopened).ok


def test_cache_rm_deletes_every_object_of_the_set(local_and_remote, s3_prefix: str) -> None:
    _, remote = local_and_remote
    remove_feature_set(f"{s3_prefix}/cache/toyfeatures00000")
    assert remote.path.sizes() == {}  # not one object left below it
    with pytest.raises(VavaError, match=r"not a feature set \(no zarr.json"):
        FeatureSet.open(remote.path)


def test_a_local_set_copied_object_for_object_into_a_bucket_reads_and_verifies_the_same(tmp_path: Path,
                                                                                       s3_prefix: str) -> None:
    local = FeatureSet.open(write_toy_features(tmp_path / "cache" / "toyfeatures00000"))
    remote = as_location(f"{s3_prefix}/copied/toyfeatures00000")
    remote.fs.put(str(local.path), remote.key, recursive=True)  # as `aws s3 sync` or any copy tool would
    copied = FeatureSet.open(remote)
    assert verify(copied).ok and verify(copied).checked == 6
    for video in local.videos():
        np.testing.assert_array_equal(copied.read(video.id), local.read(video.id))
