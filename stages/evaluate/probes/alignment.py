"""Alignment accuracy: how often aligning two val videos of an action pairs frames of the same phase
(docs/evaluation.md#alignment-accuracy). Background is a phase of its own, so a background frame
matched to background counts as right."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from itertools import combinations
from typing import Any

import numpy as np

from vava.core.correspondence import dtw_path, nearest_neighbour_path
from vava.core.embeddings_file import UNLABELLED
from vava.stages.evaluate.probes.base import Action, Column, Probe, Values, mean, percent

# report key -> table title
METHODS = {"dtw": "Align acc (DTW)", "nearest": "Align acc (NN)"}


def side_accuracy(path: np.ndarray, labels_a: np.ndarray, labels_b: np.ndarray) -> float | None:
    """Accuracy of the frame pairs `path` (K, 2) of (frame of a, frame of b), seen from a's side.

    Each labelled frame of a scores the share of its labelled partners in b that have its label (a
    DTW path may give a frame several partners); the result is the mean over the frames of a that
    have a labelled partner, or None when there is none.
    """
    i, j = path[:, 0], path[:, 1]
    known = (labels_a[i] != UNLABELLED) & (labels_b[j] != UNLABELLED)
    if not known.any():
        return None
    counted = np.bincount(i, weights=known, minlength=len(labels_a))
    correct = np.bincount(i, weights=known & (labels_a[i] == labels_b[j]), minlength=len(labels_a))
    has = counted > 0
    return float(np.mean(correct[has] / counted[has]))


def alignment_accuracy(videos: Sequence[Any]) -> dict[str, float | None]:
    """Each method's accuracy, averaged over both sides of every pair of distinct `videos` (which
    have `embeddings` (T, D) and `labels` (T,)): DTW aligns a pair once and is scored from both
    sides; nearest neighbours match each side to the other."""
    sides: dict[str, list[float | None]] = {name: [] for name in METHODS}
    for a, b in combinations(videos, 2):
        path = dtw_path(a.embeddings, b.embeddings)
        sides["dtw"] += [side_accuracy(path, a.labels, b.labels), side_accuracy(path[:, ::-1], b.labels, a.labels)]
        sides["nearest"] += [side_accuracy(_nearest(a, b), a.labels, b.labels),
                             side_accuracy(_nearest(b, a), b.labels, a.labels)]
    found = {name: [s for s in values if s is not None] for name, values in sides.items()}
    return {name: float(np.mean(values)) if values else None for name, values in found.items()}


def _nearest(a: Any, b: Any) -> np.ndarray:
    """(Ta, 2) pairs (t, the frame of b nearest to frame t of a)."""
    return np.stack([np.arange(len(a.embeddings)), nearest_neighbour_path(a.embeddings, b.embeddings)], axis=1)


class Alignment(Probe):
    name = "alignment"
    default = needs_labels = True
    min_val_videos = 2
    rank = 7

    def run(self, action: Action) -> Values:
        return {"alignment": alignment_accuracy(action.val)}

    def aggregate(self, per_action: Sequence[Values]) -> Values:
        return {name: mean(per_action, "alignment", name) for name in METHODS}

    @classmethod
    def columns(cls, options: Mapping[str, Any]) -> list[Column]:
        return [Column(title, lambda values, name=name: percent((values.get("alignment") or {}).get(name)))
                for name, title in METHODS.items()]

    @classmethod
    def protocol(cls, options: Mapping[str, Any]) -> str:
        return ("- Alignment accuracy: every pair of labelled val videos of an action aligned by DTW (Euclidean) "
                "and by nearest neighbours in both directions; a frame scores the share of its matched frames "
                "with its own label (background included); mean over frames, then over both sides of every pair.")
