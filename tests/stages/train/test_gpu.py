"""Training on a GPU: the device data path gathers the host path's batches, and a run on it learns."""
from __future__ import annotations

import csv
import math
from pathlib import Path

import pytest
import torch

from tests.stages.train.helpers import config
from vava.cache.store import FeatureSet
from vava.stages.train.data import Context, PhaseClasses, batches
from vava.stages.train.loop import train
from vava.stages.train.sampler import PairSampler

pytestmark = pytest.mark.gpu
CUDA = torch.device("cuda")


def test_device_path_gathers_the_host_paths_batches(toy_features: Path) -> None:
    fs = FeatureSet.open(toy_features)
    videos = [v for v in fs.videos() if v.split == "train"]
    sampler = PairSampler(videos, pairs=3, frames=10, seed=0)
    context, classes = Context(1, {v.id: 4 for v in videos}), PhaseClasses.of(fs, videos)
    host = list(batches(fs, videos, sampler, "host", context, classes, 2, 7, CUDA, workers=0))
    device = list(batches(fs, videos, sampler, "device", context, classes, 2, 7, CUDA, workers=0))
    assert len(host) == len(device) == 5
    for a, b in zip(host, device):
        for name in ("maps", "frame_indices", "video_lengths", "labels"):
            assert getattr(b, name).device.type == "cuda", name
            assert torch.equal(getattr(a, name), getattr(b, name)), name


def losses(run: Path) -> list[float]:
    with open(run / "train_log.csv") as handle:
        return [float(row["loss"]) for row in csv.DictReader(handle)]


def test_training_on_the_device_path_follows_the_host_path(toy_features: Path, tmp_path: Path) -> None:
    runs = {}
    for path in ("host", "device"):
        summary = train(toy_features, tmp_path / path, config("steps=4", f"data.path={path}"), device="cuda",
                        progress=False)
        assert summary.data_path == path and math.isfinite(summary.loss)
        runs[path] = losses(tmp_path / path)
    assert len(runs["device"]) == 4
    # same batches, same seed: the curves differ only by the GPU's non-deterministic reductions under bf16
    assert runs["device"] == pytest.approx(runs["host"], rel=1e-2)
