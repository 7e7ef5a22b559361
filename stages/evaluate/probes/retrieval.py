"""Fine-grained frame retrieval, AP@K (docs/evaluation.md#retrieval), leave one val video out."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from vava.stages.evaluate.probes.base import (
    AT_LEAST_ONE,
    Action,
    Column,
    Option,
    Probe,
    Report,
    Values,
    key,
    markdown,
    mean,
    percent,
)
from vava.stages.evaluate.retrieval import DEVICES, exact_search, precision_at_k

KS = Option("ks", (5, 10, 15), "AP@K depths.", check=AT_LEAST_ONE, flag="k")
RETRIEVAL_STRIDE = Option("retrieval_stride", 1, check=AT_LEAST_ONE)
DEVICE = Option("device", "auto", "FAISS device for retrieval.", choices=DEVICES)  # auto: the GPU when usable
AGGREGATIONS = {"frame_weighted": "frame-weighted (LAV/VAOT/VAVA)", "video_mean": "video mean (CARL)"}


class Retrieval(Probe):
    name = "retrieval"
    options = (KS, RETRIEVAL_STRIDE, DEVICE)
    default = needs_labels = True
    min_val_videos = 2
    rank = 5

    def __init__(self, o: Any) -> None:
        super().__init__(o)
        self.search = exact_search(o.device)  # once per evaluation: a GPU search holds its resources

    def run(self, action: Action) -> Values:
        found = precision_at_k(action.val, self.o.ks, self.o.retrieval_stride, self.search)
        values: Values = {"retrieval": {"frame_weighted": {key(k): v for k, v in found.frame_weighted.items()},
                                        "video_mean": {key(k): v for k, v in found.video_mean.items()},
                                        "queries": found.queries}}
        if found.skipped:
            values["retrieval_skipped"] = {key(k): why for k, why in found.skipped.items()}
        return values

    def aggregate(self, per_action: Sequence[Values]) -> Values:
        return {agg: {key(k): mean(per_action, "retrieval", agg, key(k)) for k in self.o.ks} for agg in AGGREGATIONS}

    @classmethod
    def columns(cls, options: Mapping[str, Any]) -> list[Column]:
        """The frame-weighted aggregation (LAV/VAOT/VAVA); report.md's section shows both."""
        return [Column(f"AP@{k}", lambda values, k=k: percent(precision(values, "frame_weighted", k)))
                for k in options["ks"]]

    @classmethod
    def setting_columns(cls) -> list[Column]:
        return [Column("AP stride", lambda report: str(report["options"]["retrieval_stride"]))]

    @classmethod
    def section(cls, report: Report) -> str | None:
        results = report["results"]
        if not results.get("retrieval"):
            return None
        ks = report["options"]["ks"]
        rows = [[title, *(percent(precision(results, agg, k)) for k in ks)] for agg, title in AGGREGATIONS.items()]
        return "\n".join(["## Fine-grained retrieval\n", markdown(["Aggregation", *(f"AP@{k}" for k in ks)], rows)])

    @classmethod
    def protocol(cls, options: Mapping[str, Any]) -> str:
        return ("- AP@K: precision of the K nearest frames (exact Euclidean) among the other val videos, stride "
                f"{options['retrieval_stride']}; ties go to the lower index.")


def precision(values: Values, aggregation: str, k: object) -> float | None:
    """AP@k in one aggregation, from results or one action's values (None: not computed)."""
    return ((values.get("retrieval") or {}).get(aggregation) or {}).get(str(k))
