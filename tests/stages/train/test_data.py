"""Training data paths (stages/train/data.py): memory and zarr loaders gather the same batches."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from vava.cache.store import FeatureSet
from vava.core.errors import VavaError
from vava.stages.train.data import MemoryFeatures, ZarrFeatures, batches, choose_data_path
from vava.stages.train.sampler import PairSampler


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


def test_a_loader_worker_prints_nothing_of_its_own(toy_features: Path, capfd: pytest.CaptureFixture,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """A read failing in a worker is one error in the main process; what the worker itself would log (zarr's
    event loop logs tracebacks of reads still in flight as the worker shuts down) is not printed after it."""
    import sys

    def damaged(self, draw, context_frames, stride):
        print("Task exception was never retrieved\nTraceback (most recent call last): ...", file=sys.stderr,
              flush=True)  # as logging's last-resort handler prints the records of asyncio's logger
        raise VavaError("video 'toy1' is damaged")

    monkeypatch.setattr(ZarrFeatures, "gather", damaged)
    fs = FeatureSet.open(toy_features)
    videos = [v for v in fs.videos() if v.split == "train"]
    sampler = PairSampler(videos, pairs=2, frames=8, seed=0)
    with pytest.raises(VavaError, match=r"^video 'toy1' is damaged$"):
        list(batches(fs, videos, sampler, "zarr", (1, 15), 0, 4, torch.device("cpu"), workers=2))
    assert capfd.readouterr().err == ""
