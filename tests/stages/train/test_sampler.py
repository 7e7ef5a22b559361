"""The pair sampler (stages/train/sampler.py): offsets and reproducible same-action pairs; an action without two
train videos is refused."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.conftest import write_toy_features
from tests.stages.train.helpers import TINY_OVERRIDES
from vava.cache.store import FeatureSet
from vava.core.distributed import Ranks
from vava.core.errors import VavaError
from vava.stages.train.config import load_config
from vava.stages.train.loop import train
from vava.stages.train.sampler import PairSampler, offset_uniform


def test_offset_uniform() -> None:
    rng = np.random.default_rng(0)
    picks = offset_uniform(50, 20, rng)
    assert len(set(picks)) == 20 and (np.diff(picks) > 0).all() and picks.min() >= 1 and picks.max() < 50
    assert offset_uniform(21, 20, rng).tolist() == list(range(1, 21))  # exactly enough: every frame but 0
    assert offset_uniform(5, 8, rng).tolist() == [0, 1, 2, 3, 4, 4, 4, 4]  # too short: clip to the last frame


def test_pairs_share_an_action_and_are_reproducible(toy_features: Path) -> None:
    videos = [v for v in FeatureSet.open(toy_features).videos() if v.split == "train"]
    sampler = PairSampler(videos, pairs=6, frames=12, seed=3)
    draw = sampler.draw(5)
    actions = {v.id: v.action for v in videos}
    assert all(actions[a] == actions[b] and a != b for a, b in draw.video_ids)
    assert draw.frame_indices.shape == (6, 2, 12)
    again = PairSampler(videos, pairs=6, frames=12, seed=3).draw(5)
    assert again.video_ids == draw.video_ids and np.array_equal(again.frame_indices, draw.frame_indices)
    assert not np.array_equal(sampler.draw(6).frame_indices, draw.frame_indices)
    with pytest.raises(VavaError, match="no training videos"):
        PairSampler([], 1, 1, 0)


# -- an action without two train videos ------------------------------------------------------------


def test_training_refuses_an_action_without_two_train_videos(tmp_path: Path) -> None:
    features = write_toy_features(tmp_path / "cache" / "lonefeatures0000", lengths=(30, 36, 41, 33))  # 1 train each
    config = load_config(None, {**TINY_OVERRIDES, "steps": 1})
    with pytest.raises(VavaError, match=r"^no pair of distinct train videos for action\(s\) 'a' \(only 'toy0'\), "
                                        r"'b' \(only 'toy2'\): training pairs two videos of an action"):
        train(features, tmp_path / "run", config, device="cpu", progress=False)
    assert not (tmp_path / "run").exists()


# -- the ranks' parts of a step under torchrun -------------------------------------------------------


@pytest.mark.parametrize("world", [1, 2, 4])
def test_ranks_parts_make_up_the_single_draw(toy_features: Path, world: int) -> None:
    """Each rank's part is a consecutive block of the global draw: in rank order the parts are exactly the
    single-process draw, every pair once (none twice, none missed)."""
    videos = [v for v in FeatureSet.open(toy_features).videos() if v.split == "train"]
    single = PairSampler(videos, pairs=8, frames=12, seed=3)
    for step in (0, 5):
        parts = [PairSampler(videos, 8, 12, 3, Ranks(rank, world, rank)).draw(step) for rank in range(world)]
        assert [len(part.video_ids) for part in parts] == [8 // world] * world
        whole = single.draw(step)
        assert [pair for part in parts for pair in part.video_ids] == whole.video_ids
        assert np.array_equal(np.concatenate([part.frame_indices for part in parts]), whole.frame_indices)


def test_ranks_refuse_a_batch_they_cannot_split_evenly(toy_features: Path) -> None:
    videos = [v for v in FeatureSet.open(toy_features).videos() if v.split == "train"]
    with pytest.raises(VavaError) as refused:
        PairSampler(videos, 6, 12, 3, Ranks(1, 4, 1))
    assert str(refused.value) == ("data.batch_pairs: 6 pairs per step do not split evenly between 4 processes; make "
                                  "it a multiple of 4 (it is the global batch, whatever the number of processes)")
