"""Targeted metrics of the wild setting (docs/evaluation.md#targeted-metrics): the phase classifier of
the classification probe, fit on every train video, scored on the val frames the benchmark flags."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from vava.core.embeddings_file import UNLABELLED, VideoEmbeddings
from vava.core.errors import option_name
from vava.core.records import BACKGROUND_KINDS, FLAG_OUT_OF_ORDER, FLAG_REPEATED
from vava.stages.evaluate.probes.base import (
    Action,
    Column,
    Metric,
    Probe,
    Report,
    Summary,
    Values,
    at,
    by_reason,
    collect,
    markdown,
    mean,
    percent,
)
from vava.stages.evaluate.probes.classification import (
    CLASSIFIER,
    require_two_phases,
    val_flags,
    val_frames,
    val_predictions,
)

# report key -> table title
METRICS = {"unflagged_accuracy": "Unflagged acc", "out_of_order_accuracy": "Out-of-order acc",
           "repeated_accuracy": "Repeated acc", "background_f1": "Background F1",
           **{f"{kind}_background_accuracy": f"{title} bg acc" for kind, title in
              (("idle", "Idle"), ("cutaway", "Cut-away"), ("distraction", "Distraction"))}}
_FLAGGED = {"unflagged_accuracy": "without a flag", "out_of_order_accuracy": "flagged out of order",
            "repeated_accuracy": "flagged repeated"}


class Targeted(Probe):
    name = "targeted"
    options = (CLASSIFIER,)
    default = needs_train = needs_labels = True
    rank = 6

    def run(self, action: Action) -> Values:
        require_two_phases(action.train)
        predicted, truth = val_predictions(action, 1.0, self.o.classifier), val_frames(action)[1]
        flags = val_flags(action)
        scored = {"unflagged_accuracy": flags == 0, "out_of_order_accuracy": (flags & FLAG_OUT_OF_ORDER) > 0,
                  "repeated_accuracy": (flags & FLAG_REPEATED) > 0}
        values = {name: float(np.mean(predicted[mask] == truth[mask])) if mask.any() else None
                  for name, mask in scored.items()}
        frames = {name: int(mask.sum()) for name, mask in scored.items()}
        background = background_labels(action.val)  # NO_BACKGROUND (-1) matches no label and no prediction
        is_background = truth == background
        values["background_f1"] = background_f1(predicted == background, is_background)
        frames["background_f1"] = int(is_background.sum())
        kinds = flags & sum(BACKGROUND_KINDS.values())
        for kind, bit in BACKGROUND_KINDS.items():  # how much of each kind of background is recognised as such
            mask = is_background & (kinds == bit)
            values[f"{kind}_background_accuracy"] = float(np.mean(predicted[mask] == background[mask])) \
                if mask.any() else None
            frames[f"{kind}_background_accuracy"] = int(mask.sum())
        # without background frames the kinds' reason is the F1's: said once, under the F1
        notes = {name: self._why_none(name, background) for name, value in values.items()
                 if value is None and not (name.endswith("_background_accuracy") and values["background_f1"] is None)}
        return {"targeted": values, "targeted_frames": frames, **({"targeted_skipped": notes} if notes else {})}

    def _why_none(self, name: str, background: np.ndarray) -> str:
        if name in _FLAGGED:
            return f"no labelled val frame {_FLAGGED[name]}"
        if name.endswith("_background_accuracy"):
            return f"no val frame is {name.removesuffix('_background_accuracy')} background"
        if self.o.background == "drop":
            return f"background frames are dropped ({option_name('background')} drop)"
        if (background < 0).all():
            return "the videos have no background label"
        return "no val frame is labelled background"

    def aggregate(self, per_action: Sequence[Values]) -> Values:
        return {name: mean(per_action, "targeted", name) for name in METRICS}

    @classmethod
    def columns(cls, options: Mapping[str, Any]) -> list[Column]:
        return [Column(title, lambda values, name=name: percent(at(values, "targeted", name)))
                for name, title in METRICS.items()]

    @classmethod
    def summary(cls) -> Summary:
        return Summary("Targeted wild metrics (%)", tuple(Metric(title, ("targeted", name))
                                                          for name, title in METRICS.items()))

    @classmethod
    def section(cls, report: Report) -> str | None:
        per_action = list(report["per_action"].items())
        if not any("targeted" in values for _, values in per_action):
            return None
        frames = {name: sum(collect([v for _, v in per_action], "targeted_frames", name)) for name in METRICS}
        rows = [[title, percent(report["results"]["targeted"][name]), str(frames[name])]
                for name, title in METRICS.items()]
        notes = [f"- {line}" for line in by_reason([(METRICS[name], why, action) for action, values in per_action
                                                     for name, why in values.get("targeted_skipped", {}).items()],
                                                    len(per_action))]
        parts = ["## Targeted metrics (classifier on every train video)\n",
                 markdown(["Metric", "Value", "Val frames"], rows)]
        if notes:
            parts.append("Not computed:\n\n" + "\n".join(notes) + "\n")
        return "\n".join(parts)

    @classmethod
    def protocol(cls, options: Mapping[str, Any]) -> str:
        return ("- Targeted: the classification probe's classifier fit on all train videos; accuracy on the labelled "
                "val frames with no flag, flagged out of order and flagged repeated; F1 of the background class "
                "(predicted background vs labelled background). None where no such frame exists.")


def background_labels(videos: Sequence[VideoEmbeddings]) -> np.ndarray:
    """Each labelled frame's video background label (NO_BACKGROUND where none), aligned with `labelled_frames`."""
    return np.concatenate([np.full(np.count_nonzero(v.labels != UNLABELLED), v.background_label) for v in videos])


def background_f1(predicted: np.ndarray, true: np.ndarray) -> float | None:
    """F1 = 2 TP / (2 TP + FP + FN) = 2 TP / (|predicted| + |true|) of boolean masks; None without a true frame."""
    if not true.any():
        return None
    return float(2 * np.count_nonzero(predicted & true) / (np.count_nonzero(predicted) + np.count_nonzero(true)))
