"""Classification over random train subsets: at each fraction, n_f videos drawn with seeds 0..n-1
(docs/evaluation.md#robustness)."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

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
    FRACTIONS,
    Frames,
    accuracy,
    accuracy_at,
    require_two_phases,
    train_count,
    val_frames,
)

ROBUSTNESS_SEEDS = Option("robustness_seeds", 10, check=AT_LEAST_ONE, cli=False)


class Robustness(Probe):
    name = "robustness"
    options = (FRACTIONS, ROBUSTNESS_SEEDS, CLASSIFIER)
    needs_train = needs_labels = True
    rank = 1

    def run(self, action: Action) -> Values:
        require_two_phases(action.train)
        o = self.o
        return {"robustness": {
            key(f): spread([subset_accuracies(action.train, val_frames(action), f, o.robustness_seeds, o.classifier)])
            for f in o.fractions}}

    def aggregate(self, per_action: Sequence[Values]) -> Values:
        return {key(f): spread(collect(per_action, "robustness", key(f), "runs")) for f in self.o.fractions}

    @classmethod
    def section(cls, report: Report) -> str | None:
        results = report["results"]
        if not results.get("robustness"):
            return None
        rows = [[f, percent(accuracy_at(results, f)), percent(v and v["mean"]), percent(v and v["std"])]
                for f, v in results["robustness"].items()]
        seeds = report["options"]["robustness_seeds"]
        return "\n".join([f"## Classification over random train subsets (seeds 0..{seeds - 1})\n",
                          markdown(["Fraction", "First n videos", "Mean", "Std"], rows)])


def spread(runs: list[list[float]]) -> Values | None:
    """Seed s's accuracy averaged over the actions, then the mean and std (ddof 1) over seeds."""
    if not runs:
        return None
    per_seed = np.mean(runs, axis=0)
    return {"mean": float(per_seed.mean()), "std": float(per_seed.std(ddof=1)) if per_seed.size > 1 else None,
            "runs": per_seed.tolist()}


def subset_accuracies(train: Sequence[VideoEmbeddings], val: Frames, fraction: float, seeds: int,
                      classifier: str) -> list[float]:
    """n_f train videos drawn at random with seeds 0..seeds-1, one accuracy each."""
    n = train_count(fraction, len(train))
    picks = [np.sort(np.random.RandomState(seed).permutation(len(train))[:n]) for seed in range(seeds)]
    return [accuracy([train[i] for i in pick], val, classifier) for pick in picks]
