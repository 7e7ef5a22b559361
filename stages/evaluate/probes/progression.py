"""Phase progression (TCC's "event completion"): R^2 of a linear regression per key event
(docs/evaluation.md#progression)."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from vava.stages.evaluate.classification import train_count
from vava.stages.evaluate.probes.base import FRACTION, Action, Column, Option, Probe, Report, Values, fixed, mean
from vava.stages.evaluate.progression import action_phases, progression_r2

PROGRESS_FRACTION = Option("progress_fraction", 1.0, check=FRACTION, cli=False)  # the single number TCC/CARL report


class Progress(Probe):
    name = "progress"
    options = (PROGRESS_FRACTION,)
    default = needs_train = needs_labels = True
    rank = 3

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
    def protocol(cls, options: Mapping[str, Any]) -> str:
        return ("- Progression: targets (t - tau_e) / T, tau_e = last frame of phase e (else the first frame of the "
                "next higher phase present, else T - 1); one OLS per key event on the first max(1, floor(f N)) train "
                f"videos, f = {options['progress_fraction']}; R^2 on all val frames, mean over events. Unlabelled and "
                "background frames are neither fit nor scored.")
