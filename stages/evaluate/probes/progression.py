"""Phase progression (TCC's "event completion"): R^2 of a linear regression per key event
(docs/evaluation.md#progression).

For the phases of an action in temporal order p_0 < ... < p_{C-1} (label ids, background excluded),
key event e is the end of phase p_e (e = 0..C-2). For a video of T frames, tau_e is the last frame
labelled p_e, or, when p_e never occurs, the first frame of the next higher phase that does occur,
else T-1 (TCC's current rule). Frame t's target for event e is r_e(t) = (t - tau_e) / T.

Frames without a phase (label -1, or background when it is kept) keep their place on the time axis
(t and T count them) but are neither fit nor scored. Only meaningful for monotonic phase orders.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from sklearn.linear_model import LinearRegression
from sklearn.metrics import r2_score

from vava.core.embeddings_file import NO_BACKGROUND, VideoEmbeddings
from vava.stages.evaluate.probes.base import FRACTION, Action, Column, Option, Probe, Report, Values, fixed, mean
from vava.stages.evaluate.probes.classification import train_count
from vava.stages.evaluate.skip import ProbeSkipped


def action_phases(videos: Sequence[VideoEmbeddings]) -> np.ndarray:
    """Phase ids of an action in temporal order: 0..C-1 without the background label(s).

    C is the longest phase list of the videos, or one more than the largest label if that is larger.
    """
    count = max(max(len(v.phases) for v in videos), max(int(v.labels.max()) for v in videos) + 1)
    background = [v.background_label for v in videos if v.background_label != NO_BACKGROUND]
    return np.setdiff1d(np.arange(count), background)


def progress_targets(labels: np.ndarray, phases: np.ndarray) -> np.ndarray:
    """(T, C-1) targets r_e(t) = (t - tau_e) / T for the key events after phases[:-1]."""
    length = labels.shape[0]
    match = labels[:, None] == phases[None, :]                      # (T, C)
    present = match.any(axis=0)
    last = np.where(present, length - 1 - np.argmax(match[::-1], axis=0), -1)
    first = np.argmax(match, axis=0)
    count = phases.size
    # for each event e: the position of the next higher phase that occurs (count if none)
    following = np.minimum.accumulate(np.where(present, np.arange(count), count)[::-1])[::-1][1:]
    fallback = np.where(following < count, first[np.minimum(following, count - 1)], length - 1)
    tau = np.where(last[:-1] >= 0, last[:-1], fallback)
    return (np.arange(length)[:, None] - tau[None, :]) / length


def _stack(videos: Sequence[VideoEmbeddings], phases: np.ndarray, split: str) -> tuple[np.ndarray, np.ndarray]:
    """Embeddings and targets of the frames that carry a phase, concatenated over `videos`."""
    keep = [np.isin(v.labels, phases) for v in videos]
    if not any(k.any() for k in keep):
        raise ProbeSkipped(f"no {split} frame carries a phase")
    x = np.concatenate([v.embeddings[k] for v, k in zip(videos, keep)])
    r = np.concatenate([progress_targets(v.labels, phases)[k] for v, k in zip(videos, keep)])
    return x, r


def progression_r2(train: Sequence[VideoEmbeddings], val: Sequence[VideoEmbeddings],
                   phases: np.ndarray) -> np.ndarray:
    """R^2 of each key event on all val frames, one OLS regression (with intercept) per event.

    The events share their inputs, so one multi-output least-squares fit equals C-1 separate ones.
    """
    if phases.size < 2:
        raise ProbeSkipped(f"needs at least 2 phases (a key event), found {phases.size}")
    x_train, r_train = _stack(train, phases, "train")
    x_val, r_val = _stack(val, phases, "val")
    predicted = LinearRegression().fit(x_train, r_train).predict(x_val)
    return np.atleast_1d(r2_score(r_val, predicted, multioutput="raw_values"))


PROGRESS_FRACTION = Option("progress_fraction", 1.0, check=FRACTION, cli=False)  # the single number TCC/CARL report


class Progress(Probe):
    name = "progress"
    options = (PROGRESS_FRACTION,)
    default = needs_train = needs_labels = True
    rank = 3
    settings_rank = 1  # report.md names its setting after the other probes'

    def run(self, action: Action) -> Values:
        used = action.train[: train_count(self.o.progress_fraction, len(action.train))]
        per_event = progression_r2(used, action.val, action_phases([*action.train, *action.val]))
        return {"progress": float(per_event.mean()), "progress_events": per_event.tolist(),
                "progress_train_videos": len(used)}

    def aggregate(self, per_action: Sequence[Values]) -> float | None:
        return mean(per_action, "progress")

    @classmethod
    def columns(cls, options: Mapping[str, Any]) -> list[Column]:
        return [Column("Progress", lambda values: fixed(values.get("progress")))]

    @classmethod
    def section(cls, report: Report) -> str | None:
        """A note when the progress R^2 is negative, which reads as a bug but is not one."""
        value = report["results"].get("progress")
        if value is None or value >= 0:
            return None
        return (f"## Progress below 0\n\nR² = {value:.4f}: the per-event linear regressions, fitted on the train "
                "videos, predict the val frames' progress worse than the mean progress of those frames would. R² "
                "has no lower bound, so this is a result, not an error: the embedding does not encode how far "
                "each phase has come in a way that carries over from train to val videos (usual after short "
                "training; compare the time-only reference row).\n")

    @classmethod
    def provenance(cls, options: Mapping[str, Any]) -> str:
        return f"progression: fraction {options['progress_fraction']}"

    @classmethod
    def protocol(cls, options: Mapping[str, Any]) -> str:
        return ("- Progression: targets (t - tau_e) / T, tau_e = last frame of phase e (else the first frame of the "
                "next higher phase present, else T - 1); one OLS per key event on the first max(1, floor(f N)) train "
                f"videos, f = {options['progress_fraction']}; R^2 on all val frames, mean over events. Unlabelled and "
                "background frames are neither fit nor scored.")
