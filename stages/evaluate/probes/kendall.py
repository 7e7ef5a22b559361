"""Kendall's tau: how well nearest-neighbour matches keep the frame order; no labels needed
(docs/evaluation.md#kendalls-tau)."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from vava.stages.evaluate.kendall import DISTANCES, kendalls_tau
from vava.stages.evaluate.probes.base import AT_LEAST_ONE, Action, Column, Option, Probe, Values, fixed, mean

KENDALL_STRIDE = Option("kendall_stride", 1, check=AT_LEAST_ONE)
KENDALL_DISTANCE = Option("kendall_distance", "sqeuclidean", choices=DISTANCES)


class Kendall(Probe):
    name = "kendall"
    options = (KENDALL_STRIDE, KENDALL_DISTANCE)
    default = True
    min_val_videos = 2
    rank = 4

    def run(self, action: Action) -> Values:
        tau = kendalls_tau([v.embeddings for v in action.val], self.o.kendall_stride, self.o.kendall_distance)
        return {"kendall": tau.mean, "kendall_pairs": tau.pairs, "kendall_nan_pairs": tau.nan_pairs}

    def aggregate(self, per_action: Sequence[Values]) -> float | None:
        return mean(per_action, "kendall")

    @classmethod
    def columns(cls, options: Mapping[str, Any]) -> list[Column]:
        return [Column("τ", lambda values: fixed(values.get("kendall")))]

    @classmethod
    def setting_columns(cls) -> list[Column]:
        return [Column("τ stride", lambda report: str(report["options"]["kendall_stride"]))]

    @classmethod
    def protocol(cls, options: Mapping[str, Any]) -> str:
        return (f"- τ: every ordered pair of val videos, stride {options['kendall_stride']}, "
                f"{options['kendall_distance']} nearest neighbour, tau-b; undefined (NaN) pairs dropped.")
