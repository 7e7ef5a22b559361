"""Evaluation probes: FAISS AP@K vs scikit-learn brute force, vectorised Kendall's tau vs a per-pair loop.

AP@K (K = 15): val videos of random 128-d embeddings with random labels, leave one video out.
Ours: `leave_one_video_out`, exact FAISS search over halving splits of the videos (every video's
frames are searched among the other half, then each half is split again), on all videos.
Baseline: per query video, `NearestNeighbors(algorithm="brute")` fit on the other videos, then
`kneighbors`, on the first --baseline-videos videos (default 50; the time is scaled to all videos,
since every video costs the same). The per-video precisions of both are compared.

Kendall's tau: random-walk embeddings (so that matches are ordered, as in real videos). Ours:
`kendalls_tau`. Baseline: the reference procedure, per ordered pair `cdist(..., "sqeuclidean")`,
argmin and `scipy.stats.kendalltau`. The tau-b step alone is also timed on the same matches.
"""
from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import TypeVar

import faiss
import numpy as np
from scipy.spatial.distance import cdist
from scipy.stats import kendalltau
from sklearn.neighbors import NearestNeighbors

from vava.stages.evaluate.probes.kendall import kendalls_tau, tau_b_against_order
from vava.stages.evaluate.probes.retrieval import exact_search, leave_one_video_out

T = TypeVar("T")


def timed(work: Callable[[], T]) -> tuple[T, float]:
    start = time.perf_counter()
    result = work()
    return result, time.perf_counter() - start


def bench_retrieval(videos: int, frames: int, dim: int, baseline_videos: int, k: int) -> None:
    rng = np.random.default_rng(0)
    embeddings = rng.standard_normal((videos * frames, dim)).astype(np.float32)
    labels = rng.integers(0, 10, videos * frames)
    bounds = np.arange(videos + 1) * frames

    def ours() -> np.ndarray:
        found = leave_one_video_out(embeddings, bounds, k, exact_search("cpu"))
        return (labels[found] == labels[:, None]).reshape(videos, frames, k)[:baseline_videos].mean(axis=(1, 2))

    def sklearn() -> np.ndarray:
        precision = []
        for a, b in zip(bounds[:baseline_videos], bounds[1:baseline_videos + 1]):
            support = np.concatenate([embeddings[:a], embeddings[b:]])
            found = NearestNeighbors(n_neighbors=k, algorithm="brute").fit(support).kneighbors(
                embeddings[a:b], return_distance=False)
            precision.append(np.mean(np.concatenate([labels[:a], labels[b:]])[found] == labels[a:b, None]))
        return np.array(precision)

    mine, t_ours = timed(ours)
    theirs, t_sklearn = timed(sklearn)
    t_sklearn_all = t_sklearn * videos / baseline_videos
    print(f"AP@{k}, leave one video out: {videos} val videos x {frames} frames x {dim}-d ({videos * frames} frames, "
          f"random labels); faiss {faiss.__version__}, {faiss.omp_get_max_threads()} threads")
    print(f"  faiss exact, halving splits (ours), all {videos} videos: {t_ours:7.2f} s")
    print(f"  sklearn brute force per video, {baseline_videos} videos:      {t_sklearn:7.2f} s"
          + (f" (all {videos}: ~{t_sklearn_all:.2f} s)" if baseline_videos < videos else ""))
    print(f"  ratio sklearn / faiss: {t_sklearn_all / t_ours:5.2f}x   "
          f"max |per-video AP@{k} difference| {np.max(np.abs(mine - theirs)):.1e}")


def bench_kendall(videos: int, frames: int, dim: int) -> None:
    rng = np.random.default_rng(1)
    sequences = [np.cumsum(rng.standard_normal((frames, dim)), axis=0).astype(np.float32) for _ in range(videos)]

    def reference() -> tuple[float, np.ndarray]:
        taus, matches = [], []
        for i, query in enumerate(sequences):
            for j, candidates in enumerate(sequences):
                if i != j:
                    nn = cdist(query, candidates, "sqeuclidean").argmin(axis=1)
                    matches.append(nn)
                    taus.append(kendalltau(np.arange(len(nn)), nn).statistic)
        return float(np.nanmean(taus)), np.array(matches)

    (expected, matches), t_reference = timed(reference)
    result, t_ours = timed(lambda: kendalls_tau(sequences))
    print(f"Kendall's tau: {videos} val videos x {frames} frames x {dim}-d, {videos * (videos - 1)} ordered pairs")
    print(f"  reference loop (cdist + kendalltau): {t_reference:7.2f} s")
    print(f"  vectorised (ours):                   {t_ours:7.2f} s   ratio {t_reference / t_ours:6.1f}x   "
          f"|tau difference| {abs(result.mean - expected):.1e}")

    scipy_taus, t_scipy = timed(lambda: [kendalltau(np.arange(row.size), row).statistic for row in matches])
    taus, t_batched = timed(lambda: tau_b_against_order(matches))
    print(f"  tau-b only, scipy per pair:          {t_scipy:7.2f} s")
    print(f"  tau-b only, batched (ours):          {t_batched:7.2f} s   ratio {t_scipy / t_batched:6.1f}x   "
          f"max |tau difference| {np.nanmax(np.abs(taus - scipy_taus)):.1e}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--videos", type=int, default=200, help="AP@K val videos")
    parser.add_argument("--frames", type=int, default=500, help="AP@K frames per video")
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--baseline-videos", type=int, default=50, help="query videos the sklearn baseline runs")
    parser.add_argument("--tau-videos", type=int, default=50)
    parser.add_argument("--tau-frames", type=int, default=300)
    args = parser.parse_args()
    bench_retrieval(args.videos, args.frames, args.dim, min(args.baseline_videos, args.videos), 15)
    bench_kendall(args.tau_videos, args.tau_frames, args.dim)


if __name__ == "__main__":
    main()
