"""Phase classification: a classifier on the first n = max(1, floor(f N)) train videos
(docs/evaluation.md#classification)."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from vava.stages.evaluate import classification as cls
from vava.stages.evaluate.probes.base import FRACTION, Action, Column, Option, Probe, Values, key, mean, percent

FRACTIONS = Option("fractions", (0.1, 0.5, 1.0), "Label fractions (share of train videos) for classification.",
                   check=FRACTION)
CLASSIFIER = Option("classifier", "svm", choices=cls.CLASSIFIERS)  # svm (TCC/LAV) | logistic (CARL)


class Classification(Probe):
    name = "classification"
    options = (FRACTIONS, CLASSIFIER)
    default = needs_train = needs_labels = True
    rank = 0

    def run(self, action: Action) -> Values:
        cls.require_two_phases(action.train)
        truth, fractions = action.val_frames[1], self.o.fractions
        return {"classification": {key(f): float(np.mean(action.predicted(f, self.o.classifier) == truth))
                                   for f in fractions},
                "classification_train_videos": {key(f): cls.train_count(f, len(action.train)) for f in fractions}}

    def aggregate(self, per_action: Sequence[Values]) -> Values:
        return {key(f): mean(per_action, "classification", key(f)) for f in self.o.fractions}

    @classmethod
    def columns(cls, options: Mapping[str, Any]) -> list[Column]:
        return [Column(f"Classification {f}", lambda values, f=f: percent(accuracy_at(values, f)))
                for f in options["fractions"]]

    @classmethod
    def protocol(cls, options: Mapping[str, Any]) -> str:
        return ("- Classification: trained on all labelled frames of the first n = max(1, floor(f N)) train videos "
                "in natural id order, accuracy over every labelled val frame (frames labelled -1 are ignored).")


def accuracy_at(values: Values, fraction: object) -> float | None:
    """The classification accuracy at `fraction` in results or one action's values (None: not computed)."""
    return (values.get("classification") or {}).get(str(fraction))

