"""Alignment accuracy: how often aligning two val videos of an action pairs frames of the same phase
(docs/evaluation.md#alignment-accuracy). Background is a phase of its own, so a background frame
matched to background counts as right."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from itertools import combinations
from typing import Any

import numpy as np

from vava.core.correspondence import dtw_path, nearest_neighbour_path
from vava.core.embeddings_file import UNLABELLED, VideoEmbeddings
from vava.core.records import BACKGROUND_KINDS
from vava.stages.evaluate.probes.base import (
    Action,
    Column,
    Metric,
    Probe,
    Report,
    Summary,
    Values,
    at,
    markdown,
    mean,
    percent,
)

# report key -> short title
METHODS = {"dtw": "DTW", "nearest": "NN"}


def frame_scores(path: np.ndarray, labels_a: np.ndarray, labels_b: np.ndarray) -> np.ndarray:
    """(Ta,) for each frame of a, the share of its partners in b (pairs (frame of a, frame of b) of
    `path`) that have its label, counting labelled frames and partners only (a DTW path may give a
    frame several partners); NaN where a frame has no labelled partner."""
    i, j = path[:, 0], path[:, 1]
    known = (labels_a[i] != UNLABELLED) & (labels_b[j] != UNLABELLED)
    counted = np.bincount(i, weights=known, minlength=len(labels_a))
    correct = np.bincount(i, weights=known & (labels_a[i] == labels_b[j]), minlength=len(labels_a))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counted > 0, correct / counted, np.nan)


def alignment_scores(videos: Sequence[VideoEmbeddings]) -> dict[str, list[tuple[np.ndarray, np.ndarray]]]:
    """Per method, the (frame scores, `background_kind`) of both sides of every pair of distinct `videos`:
    DTW aligns a pair once and is scored from both sides; nearest neighbours match each side to the other."""
    sides: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {name: [] for name in METHODS}
    for a, b in combinations(videos, 2):
        path = dtw_path(a.embeddings, b.embeddings)
        sides["dtw"] += [(frame_scores(path, a.labels, b.labels), background_kind(a)),
                         (frame_scores(path[:, ::-1], b.labels, a.labels), background_kind(b))]
        sides["nearest"] += [(frame_scores(_nearest(a, b), a.labels, b.labels), background_kind(a)),
                             (frame_scores(_nearest(b, a), b.labels, a.labels), background_kind(b))]
    return sides


def side_mean(sides: list[tuple[np.ndarray, np.ndarray]], kind: int | None = None) -> float | None:
    """Mean over sides (frame scores, `background_kind`) of the mean frame score of a side (of its background
    frames of `kind`, a `BACKGROUND_KINDS` bit, when given); sides without such a scored frame are left out."""
    means = []
    for scores, kinds in sides:
        if kind is not None:
            scores = scores[kinds == kind]
        scores = scores[~np.isnan(scores)]
        if scores.size:
            means.append(scores.mean())
    return float(np.mean(means)) if means else None


def alignment_accuracy(videos: Sequence[VideoEmbeddings]) -> dict[str, object]:
    """Each method's accuracy over every pair of `videos`, and DTW's on each kind of background frame."""
    sides = alignment_scores(videos)
    values: dict[str, object] = {name: side_mean(found) for name, found in sides.items()}
    values["dtw_background"] = {kind: side_mean(sides["dtw"], bit) for kind, bit in BACKGROUND_KINDS.items()}
    return values


def background_kind(video: VideoEmbeddings) -> np.ndarray:
    """(T,) the `BACKGROUND_KINDS` bit of each frame labelled background (0, idle, unless a kind flag says
    otherwise), -1 for the other frames."""
    kinds = (video.flags & sum(BACKGROUND_KINDS.values())).astype(np.int64)
    return np.where((video.labels == video.background_label) & (video.labels != UNLABELLED), kinds, -1)


def _nearest(a: VideoEmbeddings, b: VideoEmbeddings) -> np.ndarray:
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
        return {**{name: mean(per_action, "alignment", name) for name in METHODS},
                "dtw_background": {kind: mean(per_action, "alignment", "dtw_background", kind)
                                   for kind in BACKGROUND_KINDS}}

    @classmethod
    def columns(cls, options: Mapping[str, Any]) -> list[Column]:
        return [Column(f"Align acc ({title})", lambda values, name=name: percent(at(values, "alignment", name)))
                for name, title in METHODS.items()]

    @classmethod
    def summary(cls) -> Summary:
        return Summary("Alignment accuracy (%)", (
            *(Metric(title, ("alignment", name)) for name, title in METHODS.items()),
            *(Metric(f"DTW, {kind} bg", ("alignment", "dtw_background", kind)) for kind in BACKGROUND_KINDS)))

    @classmethod
    def section(cls, report: Report) -> str | None:
        by_kind = (report["results"].get("alignment") or {}).get("dtw_background") or {}
        if all(value is None for value in by_kind.values()):
            return None
        rows = [[kind, percent(value)] for kind, value in by_kind.items()]
        return ("## Alignment accuracy (DTW) on background frames, by kind\n\n"
                + markdown(["Background kind", "Align acc (DTW)"], rows))

    @classmethod
    def protocol(cls, options: Mapping[str, Any]) -> str:
        return ("- Alignment accuracy: every pair of labelled val videos of an action aligned by DTW (Euclidean) "
                "and by nearest neighbours in both directions; a frame scores the share of its matched frames "
                "with its own label (background included); mean over frames, then over both sides of every pair; "
                "per background kind (idle, cut-away, distraction flags) over those frames only.")
