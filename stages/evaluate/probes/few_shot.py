"""Few-shot classification (TCC): per k, episodes of k random labelled train videos, with a 95 % interval."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from vava.stages.evaluate import classification as cls
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
from vava.stages.evaluate.probes.classification import CLASSIFIER
from vava.stages.evaluate.skip import ProbeSkipped

FEW_SHOT_KS = Option("few_shot_ks", tuple(range(1, 11)), check=AT_LEAST_ONE, cli=False)  # TCC FEW_SHOT_NUM_LABELED
FEW_SHOT_EPISODES = Option("few_shot_episodes", 50, check=AT_LEAST_ONE, cli=False)


class FewShot(Probe):
    name = "few_shot"
    options = (FEW_SHOT_KS, FEW_SHOT_EPISODES, CLASSIFIER)
    needs_train = needs_labels = True
    rank = 2

    def run(self, action: Action) -> Values:
        cls.require_two_phases(action.train)
        train, o = action.train, self.o
        episodes = cls.few_shot_accuracies(train, action.val_frames, o.few_shot_ks, o.few_shot_episodes, o.classifier)
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
    mean, half = cls.t_interval(episodes)
    return {"mean": mean, "ci95": None if np.isnan(half) else half, "episodes": episodes.tolist()}
