"""Retrieval AP@K (stages/evaluate/probes/retrieval.py) against hand values and a brute force."""
from __future__ import annotations

import numpy as np
import pytest
from sklearn.neighbors import NearestNeighbors

from tests.stages.evaluate.helpers import one_hot, record
from vava.stages.evaluate.probes.retrieval import exact_search, leave_one_video_out, precision_at_k
from vava.stages.evaluate.skip import ProbeSkipped


def test_ap_one_hot_is_perfect() -> None:
    labels = [0, 0, 0, 1, 1, 2, 2, 2]
    found = precision_at_k([record(one_hot(labels), labels, "a"), record(one_hot(labels), labels, "b")], (1, 2))
    assert found.frame_weighted == {1: 1.0, 2: 1.0} and found.video_mean == {1: 1.0, 2: 1.0}


def test_ap_hand_computed_partial() -> None:
    a = record([0.0, 10.0], [0, 1], "a")
    b = record([1.0, 2.0, 11.0], [0, 1, 1], "b")
    found = precision_at_k([a, b], (1, 2, 3))
    # K=1: a hits 2/2; b hits 1 (->0), misses 2 (->0), hits 11 (->10)
    assert found.video_mean[1] == pytest.approx((1 + 2 / 3) / 2) and found.frame_weighted[1] == pytest.approx(4 / 5)
    # K=2: a: 1/2, 2/2; b: every query 1/2
    assert found.video_mean[2] == pytest.approx((0.75 + 0.5) / 2) and found.frame_weighted[2] == pytest.approx(3 / 5)
    assert 3 not in found.frame_weighted and "only 2 frames" in found.skipped[3]


def test_ap_ties_go_to_lower_index() -> None:
    # the middle video's frame is 1 away from a frame before it (label 1) and one after it (label 0);
    # they are found by searches at different split levels, and the merge keeps the lower index
    videos = [record([4.0], [1], "a"), record([5.0], [0], "b"), record([6.0], [0], "c")]
    found = leave_one_video_out(np.array([[4.0], [5.0], [6.0]], np.float32), np.arange(4), 2, exact_search("cpu"))
    assert found.tolist() == [[1, 2], [0, 2], [1, 0]]
    found = precision_at_k(videos, (1,))
    assert found.frame_weighted[1] == pytest.approx(1 / 3)  # a -> b (miss), b -> a (tie, miss), c -> b (hit)


def test_ap_stride_and_unlabelled_frames() -> None:
    a = record([0.0, 50.0, 1.0, 60.0], [0, -1, 1, -1], "a")
    b = record([0.5, 70.0, 1.2], [1, 1, 1], "b")
    found = precision_at_k([a, b], (1,), stride=2)  # a -> [0, 1] labels [0, 1]; b -> [0.5, 1.2]
    assert found.queries == 4 and found.frame_weighted[1] == pytest.approx(2 / 4)


def test_ap_matches_sklearn_brute_force() -> None:
    rng = np.random.default_rng(3)
    lengths = (20, 31, 17, 3, 12, 40, 9)
    videos = [record(rng.standard_normal((n, 5)), rng.integers(0, 3, n), f"v{i}") for i, n in enumerate(lengths)]
    found = precision_at_k(videos, (5, 10))
    precisions = []
    for i, v in enumerate(videos):
        others = [w for j, w in enumerate(videos) if j != i]
        model = NearestNeighbors(n_neighbors=10, algorithm="brute").fit(np.concatenate([w.embeddings for w in others]))
        neighbour_labels = np.concatenate([w.labels for w in others])[model.kneighbors(v.embeddings)[1]]
        precisions.append((neighbour_labels[:, :5] == v.labels[:, None]).mean(1))
    assert found.frame_weighted[5] == pytest.approx(np.concatenate(precisions).mean())
    assert found.video_mean[5] == pytest.approx(np.mean([p.mean() for p in precisions]))


def test_ap_needs_two_videos() -> None:
    with pytest.raises(ProbeSkipped, match="at least 2 val videos"):
        precision_at_k([record(one_hot([0, 1]), [0, 1])], (1,))
