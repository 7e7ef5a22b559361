"""Training data paths (stages/train/data.py): memory and zarr loaders gather the same batches; a step too large
for the device's memory is refused before anything is written."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from tests.stages.train.helpers import TINY_OVERRIDES
from vava.cache.store import FeatureSet
from vava.core.errors import VavaError
from vava.stages.train.config import load_config
from vava.stages.train.data import (
    Context,
    MemoryFeatures,
    PhaseClasses,
    ZarrFeatures,
    batches,
    channel_statistics,
    check_step_fits,
    choose_data_path,
)
from vava.stages.train.loop import train
from vava.stages.train.sampler import PairSampler


def test_memory_and_zarr_paths_gather_the_same_batch(toy_features: Path) -> None:
    fs = FeatureSet.open(toy_features)
    videos = [v for v in fs.videos() if v.split == "train"]
    draw = PairSampler(videos, pairs=3, frames=10, seed=0).draw(0)
    strides = {v.id: 15 if i % 2 else 3 for i, v in enumerate(videos)}  # e.g. videos at 30 and 6 fps, 0.5 s
    classes = PhaseClasses.of(fs, videos)
    memory = MemoryFeatures(fs, videos, classes, torch.device("cpu")).gather(draw, Context(1, strides))
    stored = ZarrFeatures(fs.path, videos, classes).gather(draw, Context(1, strides))
    for name in ("maps", "frame_indices", "video_lengths", "labels"):
        assert torch.equal(getattr(memory, name), getattr(stored, name)), name
    assert memory.maps.shape == (3, 2, 10, 2, 16, 2, 2)
    b, v, t = 1, 0, 4
    frame = int(draw.frame_indices[b, v, t])
    video_id = draw.video_ids[b][v]
    assert torch.equal(memory.maps[b, v, t, 1], torch.from_numpy(fs.read(video_id, [frame])[0]))
    for b, v, t in ((1, 0, 4), (0, 1, 9), (2, 0, 7)):
        frame, video_id = int(draw.frame_indices[b, v, t]), draw.video_ids[b][v]
        context = max(0, frame - strides[video_id])
        assert torch.equal(memory.maps[b, v, t, 0], torch.from_numpy(fs.read(video_id, [context])[0]))
    assert {strides[video] for pair in draw.video_ids for video in pair} == {3, 15}
    assert int(memory.labels[b, v, t]) == int(classes.labels(fs, video_id)[frame])


def test_zarr_loader_with_workers_yields_the_steps_in_order(toy_features: Path) -> None:
    fs = FeatureSet.open(toy_features)
    videos = [v for v in fs.videos() if v.split == "train"]
    sampler = PairSampler(videos, pairs=2, frames=8, seed=0)
    cpu = torch.device("cpu")
    context = Context(1, {v.id: 15 for v in videos})
    classes = PhaseClasses.of(fs, videos)
    from_workers = list(batches(fs, videos, sampler, "zarr", context, classes, 3, 7, cpu, workers=2))
    from_memory = list(batches(fs, videos, sampler, "host", context, classes, 3, 7, cpu, workers=0))
    assert len(from_workers) == 4
    assert all(torch.equal(a.maps, b.maps) for a, b in zip(from_workers, from_memory))


def test_phase_classes_give_each_action_its_own_classes(toy_features: Path) -> None:
    """Actions a and b have phases 0..2 each: b's become classes 3..5 of one classifier."""
    fs = FeatureSet.open(toy_features)
    videos = [v for v in fs.videos() if v.split == "train"]
    classes = PhaseClasses.of(fs, videos)
    assert classes.count == 6 and classes.offsets == {"toy0": 0, "toy1": 0, "toy3": 3, "toy4": 3}
    assert np.array_equal(classes.labels(fs, "toy3"), fs.labels("toy3") + 3)

    class Unlabelled:  # a stand-in feature set whose video has unknown frames
        def labels(self, video_id: str) -> np.ndarray:
            return np.array([-1, 0, 2, -1])

    assert classes.labels(Unlabelled(), "toy3").tolist() == [-1, 3, 5, -1]


def test_channel_statistics_match_numpy(toy_features: Path) -> None:
    fs = FeatureSet.open(toy_features)
    videos = [v for v in fs.videos() if v.split == "train"]
    maps = np.concatenate([fs.read(v.id) for v in videos]).astype(np.float64)
    mean, std = channel_statistics(fs, videos, chunk_frames=3)  # chunks that split videos
    np.testing.assert_allclose(mean.numpy(), maps.mean(axis=(0, 2, 3)), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(std.numpy(), np.maximum(maps.std(axis=(0, 2, 3)), 1e-3 * maps.std(axis=(0, 2, 3)).mean()),
                               rtol=1e-4, atol=1e-6)


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

    def damaged(self, draw, context):
        print("Task exception was never retrieved\nTraceback (most recent call last): ...", file=sys.stderr,
              flush=True)  # as logging's last-resort handler prints the records of asyncio's logger
        raise VavaError("video 'toy1' is damaged")

    monkeypatch.setattr(ZarrFeatures, "gather", damaged)
    fs = FeatureSet.open(toy_features)
    videos = [v for v in fs.videos() if v.split == "train"]
    sampler = PairSampler(videos, pairs=2, frames=8, seed=0)
    with pytest.raises(VavaError, match=r"^video 'toy1' is damaged$"):
        list(batches(fs, videos, sampler, "zarr", Context(1, {v.id: 15 for v in videos}), PhaseClasses.of(fs, videos),
                     0, 4, torch.device("cpu"), workers=2))
    assert capfd.readouterr().err == ""


# -- a step too large for the device's memory is refused first -------------------------------------


@pytest.mark.parametrize("sizes", [{"frames_per_video": 10_000_000}, {"batch_pairs": 1_000_000}])
def test_huge_batches_are_refused_with_the_limit(sizes: dict[str, int]) -> None:
    config = load_config(None, {"data": sizes})
    with pytest.raises(VavaError, match=rf"^data\.batch_pairs={config.data.batch_pairs}, data\.frames_per_video="
                                        rf"{config.data.frames_per_video}: one training step needs about [\d.e+]+ "
                                        r"GiB, more than the [\d.e+]+ GiB free on cpu; lower them$"):
        check_step_fits((1024, 14, 14), config, torch.device("cpu"))
    check_step_fits((1024, 14, 14), load_config(None, {}), torch.device("cpu"))  # Table 8's batch fits


def test_train_refuses_a_huge_batch_before_writing(toy_features: Path, tmp_path: Path) -> None:
    config = load_config(None, {**TINY_OVERRIDES, "data": {"frames_per_video": 10**12}})
    with pytest.raises(VavaError, match=r"data\.frames_per_video=1000000000000: one training step needs about"):
        train(toy_features, tmp_path / "run", config, device="cpu", progress=False)
    assert not (tmp_path / "run").exists()
