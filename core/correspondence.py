"""Frame correspondences between two embedded videos: each frame's nearest neighbour, or the
monotone DTW path of least summed Euclidean distance (computed one anti-diagonal at a time).

Shared by the evaluation plots and the aligned side-by-side video.
"""
from __future__ import annotations

import numpy as np
from sklearn.metrics import pairwise_distances


def _distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(Ta, Tb) float64 Euclidean distances between the rows of two (T, D) embedding arrays."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.ndim != 2 or b.ndim != 2 or not len(a) or not len(b) or a.shape[1] != b.shape[1]:
        raise ValueError(f"embeddings must be non-empty (T, D) arrays of the same D, got {a.shape} and {b.shape}")
    return pairwise_distances(a, b)


def nearest_neighbour_path(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(Ta,) int: for each frame of `a`, the index of the nearest frame of `b` (Euclidean)."""
    return _distances(a, b).argmin(axis=1)


def _accumulated_cost(cost: np.ndarray) -> np.ndarray:
    """DTW's accumulated cost, stored skewed so every anti-diagonal is a row.

    With D' the (n+1, m+1) accumulated cost padded by an infinite first row and column
    (D'[0, 0] = 0), row s of the result holds anti-diagonal s: `acc[s, i] = D'[i, s - i]`.
    The three predecessors of a cell on diagonal s are then plain slices of rows s-1 and s-2.
    """
    n, m = cost.shape
    rows, cols = np.indices((n, m))
    skewed_cost = np.empty((n + m + 1, n + 1))
    skewed_cost[rows + cols + 2, rows + 1] = cost
    acc = np.full((n + m + 1, n + 1), np.inf)
    acc[0, 0] = 0.0
    for s in range(2, n + m + 1):
        first, last = max(1, s - m), min(n, s - 1)  # padded rows i of the cells on diagonal s
        here, above = slice(first, last + 1), slice(first - 1, last)
        best = np.minimum(np.minimum(acc[s - 1, above], acc[s - 1, here]), acc[s - 2, above])
        acc[s, here] = skewed_cost[s, here] + best
    return acc


def warping_path(cost: np.ndarray) -> np.ndarray:
    """(K, 2) monotone path of (i, j) from (0, 0) to (n-1, m-1), with steps (1,0), (0,1) or (1,1),
    that minimises the summed `cost` (n, m). Ties prefer the diagonal step, then (1,0)."""
    cost = np.asarray(cost, dtype=np.float64)
    if cost.ndim != 2 or not cost.size:
        raise ValueError(f"cost must be a non-empty 2-D array, got shape {cost.shape}")
    acc = _accumulated_cost(cost)

    def total(cell: tuple[int, int]) -> float:
        return acc[cell[0] + cell[1], cell[0]]

    i, j = cost.shape
    steps = [(i - 1, j - 1)]
    while (i, j) != (1, 1):  # padded coordinates
        i, j = min(((i - 1, j - 1), (i - 1, j), (i, j - 1)), key=total)
        steps.append((i - 1, j - 1))
    return np.array(steps[::-1], dtype=np.int64)


def dtw_path(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(K, 2) DTW warping path between embeddings `a` (Ta, D) and `b` (Tb, D), Euclidean cost."""
    return warping_path(_distances(a, b))
