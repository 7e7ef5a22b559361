"""Scoring the embedder on held-out videos while it trains: RUN/eval_log.csv and checkpoints/best.pt.

The scores come from an `Evaluator` the caller of `train` passes in: embedding videos and probing
them is the work of the embed and evaluate stages, which this stage may not import; the pipeline
layer joins them (`vava.pipeline.val_probes`).
"""
from __future__ import annotations

import math
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

from vava.cache.store import CachedVideo, FeatureSet
from vava.core.embedder import Embedder
from vava.core.errors import VavaError, option_name
from vava.core.run_folder import BEST, CHECKPOINTS, EVAL_LOG_NAME, SCRATCH_NAME, load_checkpoint
from vava.stages.train.config import TrainConfig
from vava.stages.train.logs import CsvLog


class Evaluator(Protocol):
    """Scores an embedder (in eval mode) on videos of a feature set."""

    higher_is_better: Mapping[str, bool]  # every score it returns, and whether a higher one is better

    def __call__(self, embedder: Embedder, feature_set: FeatureSet, videos: list[CachedVideo],
                 scratch: Path) -> dict[str, float]:
        """The scores on `videos` (the train and val videos of the actions trained on), by name; NaN for
        one the data cannot give. `scratch`: a file it may use inside the run folder."""
        ...


def check_evaluator(config: TrainConfig, evaluator: Evaluator | None) -> None:
    """`VavaError` unless evaluating every `eval_every` steps by `eval_metric` is possible (the metric is
    checked even without `eval_every`: a misspelt one would otherwise wait for the run that scores)."""
    if config.eval_every and evaluator is None:
        raise VavaError(f"{option_name('eval_every')}: scoring during training needs an evaluator (the vava CLI "
                        "passes one)")
    if evaluator is not None and config.eval_metric not in evaluator.higher_is_better:
        raise VavaError(f"{option_name('eval_metric')}: {config.eval_metric!r} is not one of "
                        f"{', '.join(evaluator.higher_is_better)}")


def evaluation_due(config: TrainConfig, done: int) -> bool:
    """Whether the embedder is scored after update `done`: every `eval_every` updates and after the last."""
    return bool(config.eval_every) and (done % config.eval_every == 0 or done == config.steps)


class Validation:
    """The evaluations of a run: when they are due, their log, and the best score so far.

    On a resumed run the best so far is the one `best.pt` records, and the log's rows past the
    checkpoint resumed from are dropped (as for the training log).
    """

    def __init__(self, evaluator: Evaluator, config: TrainConfig, run_dir: Path, start: int, tensorboard: Any):
        self.evaluator, self.config, self.run_dir = evaluator, config, run_dir
        self.higher = evaluator.higher_is_better[config.eval_metric]
        self.best, self.best_step = _recorded_best(run_dir / CHECKPOINTS / BEST, config.eval_metric)
        self.log = CsvLog(run_dir / EVAL_LOG_NAME, start, "evaluation log", tensorboard, "eval")

    def score(self, embedder: Embedder, feature_set: FeatureSet, videos: list[CachedVideo],
              done: int) -> tuple[dict[str, float], bool]:
        """Score the embedder on `videos` after step `done`, log it, and say whether it is the best so far."""
        began = time.perf_counter()
        embedder.eval()
        try:
            scored = self.evaluator(embedder, feature_set, videos, self.run_dir / SCRATCH_NAME)
            scores = {k: float(v) for k, v in scored.items()}
        finally:
            embedder.train()
        self.log.write({"step": done, **scores, "seconds": time.perf_counter() - began})
        value = scores[self.config.eval_metric]
        beats = self.best is None or (value > self.best if self.higher else value < self.best)
        better = math.isfinite(value) and beats
        if better:
            self.best, self.best_step = value, done
        return {"step": done, **scores}, better

    def close(self) -> None:
        self.log.close()


def _recorded_best(path: Path, metric: str) -> tuple[float | None, int | None]:
    """The score by `metric` that best.pt was kept for, and its step; None without best.pt."""
    if not path.is_file():
        return None, None
    state = load_checkpoint(path)
    scores = state.get("eval")
    value = scores.get(metric) if isinstance(scores, dict) else None
    if not isinstance(value, (int, float)) or not math.isfinite(value):
        return None, None
    return float(value), state["step"]
