"""Retrieval with faiss-gpu: the same neighbours as the CPU search (up to float rounding ties)."""
from __future__ import annotations

import numpy as np
import pytest

from vava.stages.evaluate.probes.retrieval import exact_search, faiss_device, leave_one_video_out

pytestmark = pytest.mark.gpu


def test_gpu_search_finds_the_cpu_neighbours() -> None:
    if faiss_device("auto") != "gpu":
        pytest.skip("this faiss build has no GPU support (pip uninstall faiss-cpu; pip install -e '.[gpu]')")
    rng = np.random.default_rng(0)
    frames = rng.standard_normal((600, 32)).astype(np.float32)
    bounds = np.array([0, 90, 200, 330, 420, 600])
    on_cpu = leave_one_video_out(frames, bounds, 10, exact_search("cpu"))
    on_gpu = leave_one_video_out(frames, bounds, 10, exact_search("gpu"))
    assert on_gpu.shape == (600, 10)
    video = np.searchsorted(bounds, np.arange(600), side="right") - 1
    assert not (video[on_gpu] == video[:, None]).any()  # never a frame of the query's own video
    # both compute distances in float32 by matrix products, so two neighbours at distances equal to float
    # rounding may swap: the exact distances of what each found agree, and the indices almost everywhere
    exact = frames.astype(np.float64)
    distances = [((exact[:, None] - exact[found]) ** 2).sum(-1) for found in (on_cpu, on_gpu)]
    np.testing.assert_allclose(distances[1], distances[0], rtol=1e-4)
    assert (on_gpu == on_cpu).all(axis=1).mean() >= 0.99
