"""Retrieval with faiss-gpu: the same neighbours and AP@K as the CPU index."""
from __future__ import annotations

import numpy as np
import pytest

from vava.stages.evaluate.probes.retrieval import exact_search, faiss_device, leave_one_video_out

pytestmark = pytest.mark.gpu


def test_gpu_search_finds_the_cpu_neighbours() -> None:
    if faiss_device("auto") != "gpu":
        pytest.skip("this faiss build has no GPU support (pip uninstall faiss-cpu; pip install -e '.[gpu]')")
    rng = np.random.default_rng(0)
    # distinct distances almost surely: the order of neighbours is the same in both
    frames = rng.standard_normal((600, 32)).astype(np.float32)
    bounds = np.array([0, 90, 200, 330, 420, 600])
    on_cpu = leave_one_video_out(frames, bounds, 10, exact_search("cpu"))
    on_gpu = leave_one_video_out(frames, bounds, 10, exact_search("gpu"))
    assert on_gpu.shape == (600, 10)
    assert np.array_equal(on_gpu, on_cpu)
    video = np.searchsorted(bounds, np.arange(600), side="right") - 1
    assert not (video[on_gpu] == video[:, None]).any()  # never a frame of the query's own video
