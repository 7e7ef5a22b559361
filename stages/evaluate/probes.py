"""Running the probes on one action's videos, and the unweighted mean over actions
(docs/evaluation.md#per-action-averaging).

Numbers are kept JSON-ready: fractions and K become string keys ("0.1", "1.0", "5").
"""
from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from stages.evaluate import classification as cls
from stages.evaluate.embeddings import VideoEmbeddings
from stages.evaluate.kendall import kendalls_tau
from stages.evaluate.options import EvalOptions
from stages.evaluate.progression import action_phases, progression_r2
from stages.evaluate.retrieval import Search, precision_at_k
from stages.evaluate.skip import ProbeSkipped

Values = dict[str, object]


def key(number: float) -> str:
    """JSON key of a fraction or a K."""
    return str(number)


@dataclass
class ActionResult:
    """One action's numbers and the probes it had to skip, with the reason."""

    values: Values
    skipped: list[dict[str, str]] = field(default_factory=list)

    def attempt(self, task: str, probe: Callable[[], Values], check: Callable[[], None] = lambda: None) -> None:
        """Add `probe()`'s values, or record why it was skipped (`check` may skip it first)."""
        try:
            check()
            self.values.update(probe())
        except ProbeSkipped as skip:
            self.skipped.append({"task": task, "reason": str(skip)})


def probe_action(train: Sequence[VideoEmbeddings], val: Sequence[VideoEmbeddings], o: EvalOptions,
                 search: Search | None) -> ActionResult:
    """Every task of `o.tasks` on one action's train and val videos."""
    result = ActionResult({"train_videos": len(train), "val_videos": len(val)})
    tasks = set(o.tasks)
    val_frames = cls.labelled_frames(val) if tasks & {"classification", "few_shot", "robustness"} else None
    two_phases = functools.partial(cls.require_two_phases, train)  # what every classifier probe needs
    if "classification" in tasks:
        result.attempt("classification", lambda: {
            "classification": {key(f): cls.fraction_accuracy(train, val_frames, f, o.classifier) for f in o.fractions},
            "classification_train_videos": {key(f): cls.train_count(f, len(train)) for f in o.fractions}}, two_phases)
    if "robustness" in tasks:
        result.attempt("robustness", lambda: {"robustness": {
            key(f): _spread([cls.subset_accuracies(train, val_frames, f, o.robustness_seeds, o.classifier)])
            for f in o.fractions}}, two_phases)
    if "few_shot" in tasks:
        result.attempt("few_shot", lambda: _few_shot(train, val_frames, o), two_phases)
    if "progress" in tasks:
        result.attempt("progress", lambda: _progress(train, val, o.progress_fraction))
    if "kendall" in tasks:
        result.attempt("kendall", lambda: _kendall(val, o.kendall_stride, o.kendall_distance))
    if "retrieval" in tasks:
        result.attempt("retrieval", lambda: _retrieval(val, o.ks, o.retrieval_stride, search))
    return result


def _few_shot(train: Sequence[VideoEmbeddings], val_frames: cls.Frames, o: EvalOptions) -> Values:
    episodes = cls.few_shot_accuracies(train, val_frames, o.few_shot_ks, o.few_shot_episodes, o.classifier)
    if not episodes:
        raise ProbeSkipped(f"every k exceeds the {len(train)} train videos")
    values: Values = {"few_shot": {key(k): _interval([runs]) for k, runs in episodes.items()}}
    too_many = [k for k in o.few_shot_ks if k not in episodes]
    if too_many:
        values["few_shot_skipped"] = {key(k): f"only {len(train)} train videos" for k in too_many}
    return values


def _progress(train: Sequence[VideoEmbeddings], val: Sequence[VideoEmbeddings], fraction: float) -> Values:
    used = train[: cls.train_count(fraction, len(train))]
    per_event = progression_r2(used, val, action_phases([*train, *val]))
    return {"progress": float(per_event.mean()), "progress_events": per_event.tolist(),
            "progress_train_videos": len(used)}


def _kendall(val: Sequence[VideoEmbeddings], stride: int, distance: str) -> Values:
    tau = kendalls_tau([v.embeddings for v in val], stride, distance)
    return {"kendall": tau.mean, "kendall_pairs": tau.pairs, "kendall_nan_pairs": tau.nan_pairs}


def _retrieval(val: Sequence[VideoEmbeddings], ks: Sequence[int], stride: int, search: Search | None) -> Values:
    found = precision_at_k(val, ks, stride, search)
    values: Values = {"retrieval": {"frame_weighted": {key(k): v for k, v in found.frame_weighted.items()},
                                    "video_mean": {key(k): v for k, v in found.video_mean.items()},
                                    "queries": found.queries}}
    if found.skipped:
        values["retrieval_skipped"] = {key(k): why for k, why in found.skipped.items()}
    return values


def average_actions(per_action: dict[str, Values], o: EvalOptions) -> Values:
    """Unweighted means over the actions that produced each number (None where none did)."""

    def collect(*path: str) -> list:
        found = []
        for values in per_action.values():
            for part in path:
                values = values.get(part) if isinstance(values, dict) else None
            if values is not None:
                found.append(values)
        return found

    def mean(*path: str) -> float | None:
        values = collect(*path)
        return float(np.mean(values)) if values else None

    results: Values = {"actions": len(per_action)}
    if "classification" in o.tasks:
        results["classification"] = {key(f): mean("classification", key(f)) for f in o.fractions}
    if "progress" in o.tasks:
        results["progress"] = mean("progress")
    if "kendall" in o.tasks:
        results["kendall"] = mean("kendall")
    if "retrieval" in o.tasks:
        results["retrieval"] = {agg: {key(k): mean("retrieval", agg, key(k)) for k in o.ks}
                                for agg in ("frame_weighted", "video_mean")}
    if "few_shot" in o.tasks:
        results["few_shot"] = {key(k): _interval(collect("few_shot", key(k), "episodes")) for k in o.few_shot_ks}
    if "robustness" in o.tasks:
        results["robustness"] = {key(f): _spread(collect("robustness", key(f), "runs")) for f in o.fractions}
    return results


def _interval(runs: list[list[float]]) -> Values | None:
    """Few-shot: episode e's accuracy averaged over the actions, then the mean and 95 % t half-width."""
    if not runs:
        return None
    episodes = np.mean(runs, axis=0)
    mean, half = cls.t_interval(episodes)
    return {"mean": mean, "ci95": None if np.isnan(half) else half, "episodes": episodes.tolist()}


def _spread(runs: list[list[float]]) -> Values | None:
    """Robustness: seed s's accuracy averaged over the actions, then the mean and std (ddof 1) over seeds."""
    if not runs:
        return None
    per_seed = np.mean(runs, axis=0)
    return {"mean": float(per_seed.mean()), "std": float(per_seed.std(ddof=1)) if per_seed.size > 1 else None,
            "runs": per_seed.tolist()}
