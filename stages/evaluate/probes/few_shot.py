"""Few-shot classification (TCC): per k, episodes of k random labelled train videos, with a 95 % interval
(docs/evaluation.md#few-shot)."""
from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from scipy import stats

from vava.core.embeddings_file import VideoEmbeddings
from vava.stages.evaluate.probes.base import (
    AT_LEAST_ONE,
    Action,
    Option,
    Probe,
    Report,
    Values,
    collect,
    key,
    markdown,
    percent,
)
from vava.stages.evaluate.probes.classification import (
    CLASSIFIER,
    Frames,
    accuracy,
    require_two_phases,
    val_frames,
)
from vava.stages.evaluate.skip import ProbeSkipped

FEW_SHOT_SEED = 42  # TCC seeds numpy's global generator with 42 once; RandomState(42) draws the same stream

FEW_SHOT_KS = Option("few_shot_ks", tuple(range(1, 11)), check=AT_LEAST_ONE, cli=False)  # TCC FEW_SHOT_NUM_LABELED
FEW_SHOT_EPISODES = Option("few_shot_episodes", 50, check=AT_LEAST_ONE, cli=False)


class FewShot(Probe):
    name = "few_shot"
    options = (FEW_SHOT_KS, FEW_SHOT_EPISODES, CLASSIFIER)
    needs_train = needs_labels = True
    rank = 2

    def run(self, action: Action) -> Values:
        require_two_phases(action.train)
        train, o = action.train, self.o
        episodes = few_shot_accuracies(train, val_frames(action), o.few_shot_ks, o.few_shot_episodes, o.classifier)
        if not episodes:
            raise ProbeSkipped(f"every k exceeds the {len(train)} train videos")
        values: Values = {"few_shot": {key(k): interval([runs]) for k, runs in episodes.items()}}
        too_many = [k for k in o.few_shot_ks if k not in episodes]
        if too_many:
            values["few_shot_skipped"] = {key(k): f"only {len(train)} train videos" for k in too_many}
        return values

    def aggregate(self, per_action: Sequence[Values]) -> Values:
        return {key(k): interval(collect(per_action, "few_shot", key(k), "episodes")) for k in self.o.few_shot_ks}

    @classmethod
    def section(cls, report: Report) -> str | None:
        found = report["results"].get("few_shot")
        if not found:
            return None
        rows = [[k, percent(v and v["mean"]), percent(v and v["ci95"])] for k, v in found.items()]
        return "\n".join([f"## Few-shot classification ({report['options']['few_shot_episodes']} episodes, seed 42)\n",
                          markdown(["Labelled videos k", "Accuracy", "± 95 % CI"], rows)])


def interval(runs: list[list[float]]) -> Values | None:
    """Episode e's accuracy averaged over the actions, then the mean and 95 % t half-width."""
    if not runs:
        return None
    episodes = np.mean(runs, axis=0)
    mean, half = t_interval(episodes)
    return {"mean": mean, "ci95": None if np.isnan(half) else half, "episodes": episodes.tolist()}


def few_shot_accuracies(train: Sequence[VideoEmbeddings], val: Frames, ks: Sequence[int], episodes: int,
                        classifier: str) -> dict[int, list[float]]:
    """Few-shot (TCC): per k, `episodes` draws of the first k videos of a random permutation.

    One generator seeded once serves every k in the given order; a k above the number of train
    videos is left out (and draws nothing).
    """
    rng = np.random.RandomState(FEW_SHOT_SEED)
    result = {}
    for k in ks:
        if k > len(train):
            continue
        draws = [rng.permutation(len(train))[:k] for _ in range(episodes)]
        result[k] = [accuracy([train[i] for i in draw], val, classifier) for draw in draws]
    return result


def t_interval(values: Sequence[float]) -> tuple[float, float]:
    """Mean and the half-width of its 95 % t-interval (df = n - 1); NaN width for one value."""
    values = np.asarray(values, dtype=np.float64)
    if values.size < 2:
        return float(values.mean()), math.nan
    sem = values.std(ddof=1) / math.sqrt(values.size)
    return float(values.mean()), float(stats.t.ppf(0.975, values.size - 1) * sem)
