"""Kendall's tau: how well nearest-neighbour matches keep the frame order; phase labels are not used
(docs/evaluation.md#kendalls-tau).

For every ordered pair (i, j), i != j, of val videos, each frame of X_i[::s] is matched to its
nearest frame of X_j[::s] (argmin of the distance; the lowest index wins ties), and tau_ij is
Kendall's tau-b between the query frame order and the matched indices, as
`scipy.stats.kendalltau(arange(n), nn)` computes it. NaN taus (constant matches, one query frame)
are dropped before the mean.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from vava.stages.evaluate.probes.base import AT_LEAST_ONE, Action, Column, Option, Probe, Values, fixed, mean
from vava.stages.evaluate.skip import ProbeSkipped

DISTANCES = ("sqeuclidean", "cosine")
_BLOCK = 1 << 23  # elements of one intermediate array; bounds memory on long videos


@dataclass(frozen=True)
class KendallResult:
    mean: float        # over the pairs with a defined tau
    pairs: int         # ordered pairs evaluated
    nan_pairs: int     # pairs dropped for an undefined tau
    taus: np.ndarray   # (N, N), NaN on the diagonal and for undefined pairs


def tau_b_against_order(values: np.ndarray) -> np.ndarray:
    """Kendall's tau-b between 0..n-1 and each row of the integer array `values` (B, n).

    The order has no ties, so tau-b = (P - Q) / sqrt(n0 (n0 - U)), with n0 = n(n-1)/2 pairs, Q the
    pairs i < j with v_i > v_j, U the pairs with v_i = v_j and P = n0 - Q - U. NaN where undefined.
    """
    values = np.asarray(values)
    values = (values - values.min(axis=1, keepdims=True)).astype(np.min_scalar_type(np.ptp(values, axis=1).max()))
    n = values.shape[1]
    pairs = n * (n - 1) // 2
    ties = _tied_pairs(values)
    discordant = _discordant_pairs(values)
    with np.errstate(invalid="ignore", divide="ignore"):
        tau = (pairs - ties - 2 * discordant) / np.sqrt(pairs * (pairs - ties))
    return np.clip(tau, -1.0, 1.0)


def _tied_pairs(values: np.ndarray) -> np.ndarray:
    """Per row, the number of pairs of equal values: each element counts the equal ones sorted before it."""
    ordered = np.sort(values, axis=1)
    position = np.arange(values.shape[1])
    starts = np.ones(ordered.shape, dtype=bool)
    starts[:, 1:] = ordered[:, 1:] != ordered[:, :-1]
    run_start = np.maximum.accumulate(np.where(starts, position, 0), axis=1)
    return (position - run_start).sum(axis=1)


def _discordant_pairs(values: np.ndarray) -> np.ndarray:
    """Per row, the pairs i < j with v_i > v_j, counted with one comparison matrix per row.

    O(n^2) per row, but a single vectorised pass over rows batched to _BLOCK elements; at video
    lengths this beats scipy's O(n log n) merge sort, whose per-call overhead dominates.
    """
    rows, n = values.shape
    later = np.triu(np.ones((n, n), dtype=bool), k=1)  # [i, j] = i < j
    counts = np.empty(rows, dtype=np.int64)
    step = max(1, _BLOCK // max(1, n * n))
    for start in range(0, rows, step):
        block = values[start:start + step]
        counts[start:start + step] = np.count_nonzero((block[:, :, None] > block[:, None, :]) & later, axis=(1, 2))
    return counts


def _candidates(sequences: Sequence[np.ndarray], distance: str) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
    """Float64 frames (unit rows for cosine), the candidates padded to (N, L, D), and a per-slot bias.

    The score minimised is bias - scale * <q, k>: |k|^2 - 2<q, k> (same argmin as the squared
    distance) or -<q, k> on unit vectors (cosine). Padding slots get an infinite bias.
    """
    frames = [np.asarray(s, dtype=np.float64) for s in sequences]
    if distance == "cosine":
        frames = [f / np.maximum(np.linalg.norm(f, axis=1, keepdims=True), np.finfo(np.float64).tiny) for f in frames]
    length = max(f.shape[0] for f in frames)
    padded = np.zeros((len(frames), length, frames[0].shape[1]))
    bias = np.full((len(frames), length), np.inf)
    for index, f in enumerate(frames):
        padded[index, : f.shape[0]] = f
        bias[index, : f.shape[0]] = np.einsum("ld,ld->l", f, f) if distance == "sqeuclidean" else 0.0
    return frames, padded, bias


def match_frames(sequences: Sequence[np.ndarray], distance: str) -> list[np.ndarray]:
    """matches[i][j]: for each frame of video i, the index of its nearest frame in video j (row i unused).

    Video i's inner products with every later video j serve both directions: the argmin over j's
    frames matches i into j, the argmin over i's frames matches j into i, so each pair's product
    is computed once. Later videos are taken in groups of at most _BLOCK scores.
    """
    frames, padded, bias = _candidates(sequences, distance)
    scale = 2.0 if distance == "sqeuclidean" else 1.0
    count, length, dim = padded.shape
    matches = [np.zeros((count, f.shape[0]), dtype=np.int64) for f in frames]
    for i, query in enumerate(frames):
        own_bias = bias[i, : query.shape[0], None, None]
        group = max(1, _BLOCK // max(1, query.shape[0] * length))
        for start in range(i + 1, count, group):
            stop = min(count, start + group)
            products = (query @ padded[start:stop].reshape(-1, dim).T).reshape(query.shape[0], stop - start, length)
            matches[i][start:stop] = np.argmin(bias[None, start:stop] - scale * products, axis=2).T
            backward = np.argmin(own_bias - scale * products, axis=0)  # (group, length), padding included
            for j in range(start, stop):
                matches[j][i] = backward[j - start, : frames[j].shape[0]]
    return matches


def kendalls_tau(sequences: Sequence[np.ndarray], stride: int = 1, distance: str = "sqeuclidean") -> KendallResult:
    """Mean tau-b over every ordered pair of the (T_i, D) embedding sequences; see the module docstring."""
    if len(sequences) < 2:
        raise ProbeSkipped(f"needs at least 2 val videos, found {len(sequences)}")
    if distance not in DISTANCES:
        raise ValueError(f"distance must be one of {DISTANCES}, not {distance!r}")
    matches = match_frames([s[::stride] for s in sequences], distance)
    count = len(matches)
    taus = np.full((count, count), np.nan)
    for i, rows in enumerate(matches):
        others = np.flatnonzero(np.arange(count) != i)
        taus[i, others] = tau_b_against_order(rows[others])
    off_diagonal = taus[~np.eye(count, dtype=bool)]
    defined = off_diagonal[~np.isnan(off_diagonal)]
    if not defined.size:
        raise ProbeSkipped(f"every one of the {off_diagonal.size} pairs has an undefined tau (constant matches)")
    return KendallResult(float(defined.mean()), off_diagonal.size, off_diagonal.size - defined.size, taus)


KENDALL_STRIDE = Option("kendall_stride", 1, check=AT_LEAST_ONE)
KENDALL_DISTANCE = Option("kendall_distance", "sqeuclidean", choices=DISTANCES)


class Kendall(Probe):
    name = "kendall"
    options = (KENDALL_STRIDE, KENDALL_DISTANCE)
    default = True
    min_val_videos = 2
    rank = 4

    def run(self, action: Action) -> Values:
        tau = kendalls_tau([v.embeddings for v in action.val], self.o.kendall_stride, self.o.kendall_distance)
        return {"kendall": tau.mean, "kendall_pairs": tau.pairs, "kendall_nan_pairs": tau.nan_pairs}

    def aggregate(self, per_action: Sequence[Values]) -> float | None:
        return mean(per_action, "kendall")

    @classmethod
    def columns(cls, options: Mapping[str, Any]) -> list[Column]:
        return [Column("τ", lambda values: fixed(values.get("kendall")))]

    @classmethod
    def setting_columns(cls) -> list[Column]:
        return [Column("τ stride", lambda report: str(report["options"]["kendall_stride"]))]

    @classmethod
    def provenance(cls, options: Mapping[str, Any]) -> str:
        return f"τ: stride {options['kendall_stride']}, {options['kendall_distance']}"

    @classmethod
    def protocol(cls, options: Mapping[str, Any]) -> str:
        return (f"- τ: every ordered pair of val videos, stride {options['kendall_stride']}, "
                f"{options['kendall_distance']} nearest neighbour, tau-b; undefined (NaN) pairs dropped.")
