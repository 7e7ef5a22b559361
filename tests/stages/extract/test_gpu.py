"""Extraction on a GPU (bf16 autocast, channels_last input) against the float32 CPU path."""
from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from vava.cache.store import FeatureSet
from vava.pipeline.datasets.folder import load_folder
from vava.stages.extract.run import ExtractOptions, extract

pytestmark = pytest.mark.gpu

CPU = ExtractOptions(weights="random", image_size=64, batch_size=7, workers=2, device="cpu", progress=False)
# bf16 keeps 8 bits of mantissa: the CPU's bf16 autocast on the same videos and weights is 0.9 % off float32
# (relative Frobenius norm), its worst frame still at cosine 0.99996
TOLERANCE = 0.03


def test_gpu_features_equal_the_cpu_float32_features(tiny_dataset: Path, tmp_path: Path) -> None:
    records = load_folder(tiny_dataset)
    on_cpu = extract(records, tmp_path / "cpu", CPU)
    on_gpu = extract(records, tmp_path / "gpu", dataclasses.replace(CPU, device="cuda"))
    assert on_cpu.ok and on_gpu.ok and on_gpu.fingerprint == on_cpu.fingerprint  # the device is no input
    assert on_gpu.frames == on_cpu.frames == 65 and on_gpu.backbone_s > 0
    cpu, gpu = FeatureSet.open(on_cpu.path), FeatureSet.open(on_gpu.path)
    for record in records:
        expected, found = cpu.read(record.id).astype(np.float32), gpu.read(record.id).astype(np.float32)
        assert found.shape == expected.shape == (record.num_frames, 1024, 4, 4)
        error = np.linalg.norm(found - expected) / np.linalg.norm(expected)
        assert error < TOLERANCE, f"{record.id}: relative error {error:.4f}"
        assert np.array_equal(gpu.labels(record.id), cpu.labels(record.id))
        assert np.array_equal(gpu.frame_index(record.id), cpu.frame_index(record.id))
