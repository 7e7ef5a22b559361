"""Frame correspondences (vava.core.correspondence): nearest neighbour and DTW paths against hand values
and a naive dynamic programme."""
from __future__ import annotations

import numpy as np
import pytest

from vava.core.correspondence import dtw_path, nearest_neighbour_path, warping_path


# -- paths -----------------------------------------------------------------------------------
def naive_dtw(cost: np.ndarray) -> np.ndarray:
    """Textbook DTW: cell-by-cell accumulation, then backtracking (diagonal first on ties)."""
    n, m = cost.shape
    acc = np.full((n + 1, m + 1), np.inf)
    acc[0, 0] = 0.0
    for i in range(1, n + 1):
        for j in range(1, m + 1):
            acc[i, j] = cost[i - 1, j - 1] + min(acc[i - 1, j - 1], acc[i - 1, j], acc[i, j - 1])
    i, j, path = n, m, [(n - 1, m - 1)]
    while (i, j) != (1, 1):
        i, j = min(((i - 1, j - 1), (i - 1, j), (i, j - 1)), key=lambda cell: acc[cell])
        path.append((i - 1, j - 1))
    return np.array(path[::-1])


def test_nearest_neighbour_path_on_hand_made_embeddings() -> None:
    a = np.array([[0.0, 0.0], [1.0, 0.0], [5.0, 5.0], [1.1, 0.1]])
    b = np.array([[5.0, 4.9], [0.1, 0.0], [1.2, 0.0]])
    assert nearest_neighbour_path(a, b).tolist() == [1, 2, 0, 2]


def test_dtw_on_hand_computed_examples() -> None:
    cost = np.array([[0.0, 1.0, 4.0, 4.0],
                     [4.0, 4.0, 1.0, 4.0],
                     [4.0, 4.0, 4.0, 0.0]])
    assert warping_path(cost).tolist() == [[0, 0], [0, 1], [1, 2], [2, 3]]  # total 2, the only path that cheap
    a, b = np.array([[0.0], [1.0], [2.0]]), np.array([[0.0], [1.0], [1.0], [2.0]])
    assert dtw_path(a, b).tolist() == [[0, 0], [1, 1], [1, 2], [2, 3]]  # total 0
    assert warping_path(np.array([[3.0]])).tolist() == [[0, 0]]


@pytest.mark.parametrize("shape", [(9, 14), (14, 9), (1, 6), (6, 1), (25, 25)])
def test_dtw_equals_naive_dp_on_random_costs(shape: tuple[int, int]) -> None:
    cost = np.random.default_rng(sum(shape)).random(shape)
    path, expected = warping_path(cost), naive_dtw(cost)
    assert np.array_equal(path, expected)


def test_dtw_path_is_monotone_from_start_to_end() -> None:
    rng = np.random.default_rng(1)
    a, b = rng.standard_normal((13, 4)), rng.standard_normal((7, 4))
    path = dtw_path(a, b)
    assert path[0].tolist() == [0, 0] and path[-1].tolist() == [12, 6]
    assert {tuple(step) for step in np.diff(path, axis=0)} <= {(1, 0), (0, 1), (1, 1)}
