"""Pair sampling, context stacks and the three data paths (which must agree exactly)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from vava.cache.store import FeatureSet
from vava.core.errors import VavaError
from vava.stages.train.data import MemoryFeatures, ZarrFeatures, batches, choose_data_path
from vava.core.embedder import Embedder, EmbedderConfig, context_indices
from vava.stages.train.sampler import PairSampler, offset_uniform


def test_offset_uniform() -> None:
    rng = np.random.default_rng(0)
    picks = offset_uniform(50, 20, rng)
    assert len(set(picks)) == 20 and (np.diff(picks) > 0).all() and picks.min() >= 1 and picks.max() < 50
    assert offset_uniform(21, 20, rng).tolist() == list(range(1, 21))  # exactly enough: every frame but 0
    assert offset_uniform(5, 8, rng).tolist() == [0, 1, 2, 3, 4, 4, 4, 4]  # too short: clip to the last frame


def test_context_indices_look_back_only() -> None:
    assert context_indices(torch.tensor([0, 5, 20, 40]), 1, 15).tolist() == [[0, 0], [0, 5], [5, 20], [25, 40]]
    assert context_indices(torch.tensor([7]), 2, 3).tolist() == [[1, 4, 7]]
    assert context_indices(torch.tensor([7]), 0, 3).tolist() == [[7]]


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


def test_memory_and_zarr_paths_gather_the_same_batch(toy_features: Path) -> None:
    fs = FeatureSet.open(toy_features)
    videos = [v for v in fs.videos() if v.split == "train"]
    draw = PairSampler(videos, pairs=3, frames=10, seed=0).draw(0)
    memory = MemoryFeatures(fs, videos, torch.device("cpu")).gather(draw, 1, 15)
    stored = ZarrFeatures(fs.path, videos).gather(draw, 1, 15)
    for name in ("maps", "frame_indices", "video_lengths", "labels"):
        assert torch.equal(getattr(memory, name), getattr(stored, name)), name
    assert memory.maps.shape == (3, 2, 10, 2, 16, 2, 2)
    b, v, t = 1, 0, 4
    frame = int(draw.frame_indices[b, v, t])
    video_id = draw.video_ids[b][v]
    assert torch.equal(memory.maps[b, v, t, 1], torch.from_numpy(fs.read(video_id, [frame])[0]))
    assert torch.equal(memory.maps[b, v, t, 0], torch.from_numpy(fs.read(video_id, [max(0, frame - 15)])[0]))
    assert int(memory.labels[b, v, t]) == int(fs.labels(video_id)[frame])


def test_zarr_loader_with_workers_yields_the_steps_in_order(toy_features: Path) -> None:
    fs = FeatureSet.open(toy_features)
    videos = [v for v in fs.videos() if v.split == "train"]
    sampler = PairSampler(videos, pairs=2, frames=8, seed=0)
    cpu = torch.device("cpu")
    from_workers = list(batches(fs, videos, sampler, "zarr", (1, 15), 3, 7, cpu, workers=2))
    from_memory = list(batches(fs, videos, sampler, "host", (1, 15), 3, 7, cpu, workers=0))
    assert len(from_workers) == 4
    assert all(torch.equal(a.maps, b.maps) for a, b in zip(from_workers, from_memory))


def test_choose_data_path() -> None:
    cpu = torch.device("cpu")
    assert choose_data_path("zarr", 10, cpu) == "zarr"
    assert choose_data_path("auto", 10, cpu) == "host"
    assert choose_data_path("auto", 1 << 60, cpu) == "zarr"
    with pytest.raises(VavaError, match="'device' needs a CUDA device"):
        choose_data_path("device", 10, cpu)
    with pytest.raises(VavaError, match="data.path: 'disk' is not one of"):
        choose_data_path("disk", 10, cpu)


def test_embedder_is_table_9() -> None:
    embedder = Embedder(1024, EmbedderConfig())
    assert round(sum(p.numel() for p in embedder.parameters()) / 1e6, 2) == 21.57  # docs/method.md#embedder-and-training
    maps = torch.randn(3, 2, 1024, 2, 2)
    assert embedder.eval()(maps).shape == (3, 128)
    # time is the Conv3d depth axis: swapping context and frame changes the output
    assert not torch.allclose(embedder(maps), embedder(maps.flip(1)))
    unit = Embedder(16, EmbedderConfig(conv_channels=8, fc_channels=8, l2_normalize=True)).eval()
    assert torch.allclose(unit(torch.randn(4, 2, 16, 2, 2)).norm(dim=-1), torch.ones(4))
