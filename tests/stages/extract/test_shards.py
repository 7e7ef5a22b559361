"""The split of pending videos between the ranks of a torchrun extraction."""
from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import make_folder_dataset
from vava.core.errors import VavaError
from vava.pipeline.datasets.folder import load_folder
from vava.stages.extract import shards
from vava.stages.extract.shards import plan_shards


def test_shards_balance_the_frames_each_video_caches(tmp_path: Path) -> None:
    lengths = [20, 35, 12, 28, 16, 30, 24]
    records = load_folder(make_folder_dataset_root(tmp_path, lengths))
    planned = plan_shards(records, 2, None)
    # longest first onto the lighter shard: 35 -> 0, 30 -> 1, 28 -> 1 (30 < 35), 24 -> 0 (35 < 58),
    # 20 -> 1 (58 < 59), 16 -> 0 (59 < 78), 12 -> 0 (75 < 78)
    assert planned == [["v1", "v2", "v4", "v6"], ["v0", "v3", "v5"]]
    frames = {record.id: length for record, length in zip(records, lengths)}
    assert [sum(frames[i] for i in shard) for shard in planned] == [87, 78]


def test_resampling_counts_the_frames_kept(tmp_path: Path) -> None:
    records = load_folder(make_folder_dataset_root(tmp_path, [30, 16, 16]))  # 15 fps
    # at 5 fps: 10, 6 and 6 frames kept; 30 frames would otherwise outweigh both others together
    assert plan_shards(records, 2, 5.0) == [["v0"], ["v1", "v2"]]


def test_every_video_in_exactly_one_shard(tmp_path: Path) -> None:
    records = load_folder(make_folder_dataset_root(tmp_path, [10 + 3 * (i % 5) for i in range(11)]))
    for world in (1, 2, 3, 4, 16):
        planned = plan_shards(records, world, None)
        assert len(planned) == world
        assert sorted(i for shard in planned for i in shard) == sorted(r.id for r in records)


def test_a_world_of_one_probes_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    records = load_folder(make_folder_dataset_root(tmp_path, [10, 12]))
    monkeypatch.setattr(shards, "kept_frames", lambda *_: pytest.fail("probed a video"))
    assert plan_shards(records, 1, None) == [["v0", "v1"]]


def test_a_video_that_cannot_be_probed_still_goes_to_one_rank(tmp_path: Path) -> None:
    root = make_folder_dataset_root(tmp_path, [20, 12, 14])
    (root / "videos" / "v1.mp4").write_bytes(b"not a video")
    # v1 weighs 1: 20 -> 0, 14 -> 1, 1 -> 1
    assert plan_shards(load_folder(root), 2, None) == [["v0"], ["v1", "v2"]]
    with pytest.raises(VavaError):  # what the weight of 1 stands in for
        shards.kept_frames(load_folder(root)[1], None)


def make_folder_dataset_root(tmp_path: Path, lengths: list[int]) -> Path:
    make_folder_dataset(tmp_path / "data", lengths)
    return tmp_path / "data"
