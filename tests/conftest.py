"""Shared fixtures: tiny datasets and feature sets written to temporary folders, and a trained run."""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.s3_server import s3_prefix, s3_server  # noqa: F401 (the object-storage tests' fixtures)
from tests.stages.train.helpers import run_config
from vava.cache.fingerprint import FORMAT_VERSION
from vava.cache.inputs import FeatureInputs, FeatureSettings, Sampling
from vava.core.preprocess import Preprocessing
from vava.core.videoio import write_video
from vava.pipeline.datasets.folder import write_manifest
from vava.stages.train.loop import train


def pytest_configure(config: pytest.Config) -> None:
    """Under pytest-xdist each worker's torch takes its share of the cores this process may use (those
    `-n auto` counts): N workers with N threads each would oversubscribe them."""
    workers = os.environ.get("PYTEST_XDIST_WORKER_COUNT")
    if workers:
        # sched_getaffinity is Linux-only; elsewhere every core counts.
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
        torch.set_num_threads(max(1, cores // int(workers)))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests marked `gpu` are skipped, saying why, on a machine without CUDA."""
    if torch.cuda.is_available():
        return
    for item in items:
        if item.get_closest_marker("gpu"):
            item.add_marker(pytest.mark.skip(reason="no CUDA device"))


SIZE = 64
GOOD = {"id": "a", "path": "videos/a.mp4", "split": "train", "action": "pour", "labels": [0, 0, 1, 2],
        "phases": ["start", "pour", "end"], "fps": 30, "background_label": 2}  # a valid manifest entry


def moving_square(num_frames: int, seed: int, size: int = SIZE) -> np.ndarray:
    """(T, size, size, 3) uint8: a bright square sliding left to right over a dark textured field."""
    rng = np.random.default_rng(seed)
    base = (rng.random((size, size, 3)) * 60).astype(np.uint8)
    frames = np.broadcast_to(base, (num_frames, size, size, 3)).copy()
    xs = np.linspace(0, size - 16, num_frames).astype(int)
    cols = np.arange(size)
    inside = (cols[None, :] >= xs[:, None]) & (cols[None, :] < xs[:, None] + 16)  # (T, size)
    rows = slice(size // 2 - 8, size // 2 + 8)
    frames[:, rows][inside[:, None, :].repeat(16, axis=1)] = (230, 200, 40)
    return frames


def make_folder_dataset(root: Path, lengths: list[int], fps: float = 15.0, split_val: int = 1) -> list[dict]:
    """Write videos of the given lengths plus a manifest (two phases, halves); return the entries."""
    (root / "videos").mkdir(parents=True, exist_ok=True)
    entries = []
    for i, length in enumerate(lengths):
        write_video(root / "videos" / f"v{i}.mp4", moving_square(length, seed=i), fps)
        labels = [0] * (length // 2) + [1] * (length - length // 2)
        entries.append({"id": f"v{i}", "path": f"videos/v{i}.mp4", "split": "val" if i < split_val else "train",
                        "action": "slide", "labels": labels, "phases": ["left", "right"], "fps": fps})
    write_manifest(root, entries)
    return entries


def read_manifest(root: Path) -> list[dict]:
    return [json.loads(line) for line in (root / "manifest.jsonl").read_text().splitlines()]


def write_entry(root: Path, **change: object) -> None:
    root.mkdir(parents=True, exist_ok=True)
    (root / "manifest.jsonl").write_text(json.dumps({**GOOD, **change}) + "\n")


@pytest.fixture
def tiny_dataset(tmp_path: Path) -> Path:
    root = tmp_path / "data"
    make_folder_dataset(root, [18, 22, 25])
    return root


def toy_inputs(num_videos: int) -> FeatureInputs:
    """The inputs of a feature set of `num_videos` videos written directly (no extraction)."""
    settings = FeatureSettings(backbone="toy", layer="toy", weights="toy", preprocessing=Preprocessing(),
                               sampling=Sampling(None), on_length_mismatch="error", dtype="float16")
    return FeatureInputs(settings, num_videos=num_videos, manifest_digest="toy", format_version=FORMAT_VERSION)


def write_toy_features(path: Path, lengths: tuple[int, ...] = (30, 36, 41, 33, 38, 44), channels: int = 16,
                       seed: int = 0, distinct_actions: bool = False) -> Path:
    """A feature set written directly (no extraction): 2 actions, the last video of each in val.

    Each frame's maps are its phase's pattern plus noise, so phases are learnable. The two actions
    share their three patterns unless `distinct_actions`.
    """
    from vava.cache.store import FeatureSet

    rng = np.random.default_rng(seed)
    fs = FeatureSet.create(path, path.name, toy_inputs(len(lengths)), {"dataset": {"root": "toy"}})
    patterns = rng.standard_normal((6 if distinct_actions else 3, channels, 2, 2))
    half = len(lengths) // 2
    for i, length in enumerate(lengths):
        labels = np.minimum(np.arange(length) * 3 // length, 2)
        shift = 3 * (i // half) if distinct_actions else 0
        maps = patterns[labels + shift] + 0.3 * rng.standard_normal((length, channels, 2, 2))
        split = "val" if i in (half - 1, len(lengths) - 1) else "train"
        writer = fs.begin_video(f"toy{i}", (channels, 2, 2), {"split": split, "action": "ab"[i // half],
                                                                "phases": ["p0", "p1", "p2"]})
        writer.append(maps.astype(np.float16))
        writer.finish(labels, np.arange(length), {"decoded_frames": length, "fps": 15.0})
    return path


@pytest.fixture
def toy_features(tmp_path: Path) -> Path:
    return write_toy_features(tmp_path / "cache" / "toyfeatures00000")


# -- a trained run: the run-folder tests of core, stages and e2e work on copies of it ----------------


@pytest.fixture(scope="module")
def trained_once(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(feature set, run trained 4 steps with checkpoints at 2 and 4): copy the run before changing it."""
    base = tmp_path_factory.mktemp("safety")
    features = write_toy_features(base / "cache" / "toyfeatures00000")
    train(features, base / "run", run_config(4), progress=False)
    return features, base / "run"


@pytest.fixture
def run(trained_once: tuple[Path, Path], tmp_path: Path) -> Path:
    copy = tmp_path / "run"
    shutil.copytree(trained_once[1], copy)
    return copy


@pytest.fixture
def features(trained_once: tuple[Path, Path]) -> Path:
    return trained_once[0]
