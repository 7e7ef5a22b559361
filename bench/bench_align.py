"""DTW: the anti-diagonal (wavefront) numpy DP of `vava.core.correspondence` against a per-cell Python loop.

Both run on the same Euclidean cost matrix of two random 300-frame, 128-d embeddings (the matrix
itself is computed once, outside the timings) and must return the same warping path. The loop
version, written here only, accumulates cell by cell in Python lists and backtracks the same way.
"""
from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import numpy as np
from sklearn.metrics import pairwise_distances

from vava.core.correspondence import warping_path


def loop_warping_path(cost: list[list[float]]) -> np.ndarray:
    n, m = len(cost), len(cost[0])
    inf = float("inf")
    acc = [[0.0] + [inf] * m] + [[inf] * (m + 1) for _ in range(n)]
    for i in range(1, n + 1):
        row, above, costs = acc[i], acc[i - 1], cost[i - 1]
        for j in range(1, m + 1):
            row[j] = costs[j - 1] + min(above[j - 1], above[j], row[j - 1])
    i, j, path = n, m, [(n - 1, m - 1)]
    while (i, j) != (1, 1):
        i, j = min(((i - 1, j - 1), (i - 1, j), (i, j - 1)), key=lambda cell: acc[cell[0]][cell[1]])
        path.append((i - 1, j - 1))
    return np.array(path[::-1])


def timed(fn: Callable[[], np.ndarray], repeats: int) -> tuple[float, np.ndarray]:
    """Median seconds over `repeats` calls, and the last result."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--frames", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    cost = pairwise_distances(rng.standard_normal((args.frames, 128)), rng.standard_normal((args.frames, 128)))
    cost_lists = cost.tolist()
    warping_path(cost)  # warm-up
    ours_s, ours = timed(lambda: warping_path(cost), args.repeats)
    loop_s, loop = timed(lambda: loop_warping_path(cost_lists), 3)
    print(f"DTW path, {args.frames}x{args.frames} cost matrix, float64, CPU")
    print(f"wavefront numpy DP: {ours_s * 1e3:8.2f} ms   (median of {args.repeats})")
    print(f"per-cell Python loop: {loop_s * 1e3:6.1f} ms   (median of 3)")
    print(f"speed-up: {loop_s / ours_s:.1f}x   same path: {np.array_equal(ours, loop)} ({len(ours)} steps)")


if __name__ == "__main__":
    main()
