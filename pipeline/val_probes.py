"""Scores of the embedder on the val split while it trains (`vava train --eval-every N`).

The train stage asks an evaluator for them (`vava.stages.train.evaluation.Evaluator`); this one
joins two stages that may not import each other: the embed stage writes the train and val
embeddings as `vava embed` does, into a scratch file in the run folder, and the evaluate stage runs
its cheap probes on them as `vava evaluate` does. So a row of eval_log.csv holds the numbers that
`vava embed --checkpoint STEP` and `vava evaluate --checkpoint STEP --tasks classification,progress,kendall`
report for that step's checkpoint (classification at label fraction 1.0, the other options at their defaults).
"""
from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from pathlib import Path
from types import MappingProxyType

from vava.cache.store import CachedVideo, FeatureSet
from vava.core.embedder import Embedder
from vava.core.errors import VavaError
from vava.stages.embed.run import on_maps, write_embeddings
from vava.stages.evaluate.report import evaluate_embeddings

# Each score: its probe (the task of `vava evaluate`), and where the report's results hold its number.
METRICS: Mapping[str, tuple[str, Callable[[dict], object]]] = MappingProxyType({
    "classification": ("classification", lambda results: results["classification"]["1.0"]),  # val accuracy
    "progress": ("progress", lambda results: results["progress"]),  # R^2 of phase progression
    "kendall": ("kendall", lambda results: results["kendall"]),  # Kendall's tau between val videos
})


class ValProbes:
    """Classification accuracy (label fraction 1.0), progression R^2 and Kendall's tau on the val split."""

    higher_is_better: Mapping[str, bool] = MappingProxyType({name: True for name in METRICS})

    def __init__(self, chunk_frames: int = 256) -> None:
        self.chunk_frames = chunk_frames

    def __call__(self, embedder: Embedder, feature_set: FeatureSet, videos: list[CachedVideo],
                 scratch: Path) -> dict[str, float]:
        """The scores on `videos` (train and val), NaN for one no action supports (e.g. Kendall's tau with
        one val video per action)."""
        device = next(embedder.parameters()).device
        embed_one = on_maps(feature_set, embedder, embedder.config, self.chunk_frames, device)
        try:
            write_embeddings(scratch, feature_set, videos, embed_one, {"embedder": "trained", "splits": "train,val"})
            report = evaluate_embeddings(scratch, tasks=tuple(task for task, _ in METRICS.values()), fractions=(1.0,))
        except VavaError as err:
            raise VavaError(f"--eval-every: cannot score the val split: {err}") from None
        finally:
            scratch.unlink(missing_ok=True)
        return {name: _number(read(report["results"])) for name, (_, read) in METRICS.items()}


def _number(value: object) -> float:
    return float(value) if isinstance(value, (int, float)) else math.nan
