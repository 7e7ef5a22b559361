"""Scoring during training: when it runs, eval_log.csv, best.pt by the metric's direction, resuming."""
from __future__ import annotations

import csv
import math
import os
from pathlib import Path

import pytest

from tests.stages.train.helpers import config
from tests.stages.train.test_loop import losses
from vava.core.errors import VavaError
from vava.core.run_folder import load_checkpoint
from vava.stages.train.loop import train


class Scripted:
    """An evaluator returning the given scores in turn (its metric `acc`, plus `other` = 1)."""

    def __init__(self, scores: list[float], higher: bool = True) -> None:
        self.scores = iter(scores)
        self.higher_is_better = {"acc": higher, "other": True}
        self.training_modes: list[bool] = []

    def __call__(self, embedder, feature_set, videos, scratch: Path) -> dict[str, float]:
        self.training_modes.append(embedder.training)
        self.videos = [v.id for v in videos]
        assert scratch.parent.name == "run" and feature_set.fingerprint == "toyfeatures00000"
        return {"acc": next(self.scores), "other": 1.0}


def eval_rows(run: Path) -> list[dict[str, str]]:
    with open(run / "eval_log.csv", newline="") as handle:
        return list(csv.DictReader(handle))


def best_is(run: Path, step: int) -> bool:
    return os.path.samefile(run / "checkpoints" / "best.pt", run / "checkpoints" / f"step_{step:07d}.pt")


@pytest.mark.parametrize(("higher", "best", "saved"), [(True, 4, [2, 4, 5]), (False, 2, [2, 5])])
def test_scores_every_n_steps_and_keeps_the_best(higher: bool, best: int, saved: list[int], toy_features: Path,
                                                 tmp_path: Path) -> None:
    run, evaluator = tmp_path / "run", Scripted([0.5, 0.8, 0.7], higher)
    train(toy_features, run, config("steps=5", "checkpoint_every=5", "eval_every=2", "eval_metric=acc"),
          progress=False, evaluator=evaluator)
    rows = eval_rows(run)
    assert [(int(r["step"]), float(r["acc"]), float(r["other"])) for r in rows] == [(2, 0.5, 1), (4, 0.8, 1),
                                                                                     (5, 0.7, 1)]
    assert list(rows[0]) == ["step", "acc", "other", "seconds"] and all(float(r["seconds"]) >= 0 for r in rows)
    assert evaluator.training_modes == [False] * 3  # scored in eval mode (no dropout), then back to training
    assert best_is(run, best)
    assert load_checkpoint(run / "checkpoints" / "best.pt")["eval"] == {"step": best, "acc": 0.8 if higher else 0.5,
                                                                        "other": 1.0}
    # each new best is saved, off the checkpoint schedule too; last.pt ends at the last step
    assert sorted(p.name for p in (run / "checkpoints").glob("step_*")) == [f"step_{s:07d}.pt" for s in saved]
    assert load_checkpoint(run / "checkpoints" / "last.pt")["step"] == 5


def test_scoring_does_not_change_training(toy_features: Path, tmp_path: Path) -> None:
    train(toy_features, tmp_path / "plain", config("steps=4"), progress=False)
    train(toy_features, tmp_path / "run", config("steps=4", "eval_every=1", "eval_metric=acc"), progress=False,
          evaluator=Scripted([0.1, 0.2, 0.3, 0.4]))
    assert losses(tmp_path / "run") == losses(tmp_path / "plain")


def test_resume_keeps_the_best_so_far(toy_features: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    train(toy_features, run, config("steps=4", "eval_every=2", "eval_metric=acc"), progress=False,
          evaluator=Scripted([0.6, 0.9]))
    assert best_is(run, 4)
    summary = train(toy_features, run, config("steps=8", "eval_every=2", "eval_metric=acc"), resume=True,
                    progress=False, evaluator=Scripted([0.8, 0.7]))  # worse than 0.9 at step 4: best.pt stays
    assert summary.best == ("acc", 0.9, 4)
    assert [int(r["step"]) for r in eval_rows(run)] == [2, 4, 6, 8]
    assert best_is(run, 4)
    train(toy_features, run, config("steps=10", "eval_every=2", "eval_metric=acc"), resume=True, progress=False,
          evaluator=Scripted([0.95]))
    assert best_is(run, 10)


def test_resume_drops_eval_rows_past_the_checkpoint(toy_features: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    train(toy_features, run, config("steps=3", "checkpoint_every=2", "eval_every=3", "eval_metric=acc"),
          progress=False, evaluator=Scripted([math.nan]))  # a NaN score is logged, never the best
    assert not (run / "checkpoints" / "best.pt").exists() and eval_rows(run)[0]["acc"] == "nan"
    (run / "checkpoints" / "last.pt").unlink()
    (run / "checkpoints" / "last.pt").hardlink_to(run / "checkpoints" / "step_0000002.pt")  # killed after step 3
    train(toy_features, run, config("steps=3", "checkpoint_every=2", "eval_every=3", "eval_metric=acc"), resume=True,
          progress=False, evaluator=Scripted([0.3]))
    assert [(r["step"], r["acc"]) for r in eval_rows(run)] == [("3", "0.3")]
    assert best_is(run, 3)


def test_evaluation_guards(toy_features: Path, tmp_path: Path) -> None:
    with pytest.raises(VavaError, match=r"^eval_every: scoring during training needs an evaluator"):
        train(toy_features, tmp_path / "a", config("steps=2", "eval_every=1"), progress=False)
    with pytest.raises(VavaError, match=r"^eval_metric: 'classification' is not one of acc, other$"):
        train(toy_features, tmp_path / "b", config("steps=2", "eval_every=1"), progress=False, evaluator=Scripted([]))
    # eval_every 0: the evaluator is not used
    train(toy_features, tmp_path / "c", config("steps=2", "eval_metric=acc"), progress=False, evaluator=Scripted([]))
    assert not (tmp_path / "c" / "eval_log.csv").exists()
    with pytest.raises(VavaError, match="eval_every must be at least 0"):
        config("eval_every=-1")


def test_scores_go_to_tensorboard_beside_the_training_scalars(toy_features: Path, tmp_path: Path) -> None:
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run = tmp_path / "run"
    train(toy_features, run, config("steps=4", "eval_every=2", "eval_metric=acc", "tensorboard=true"), progress=False,
          evaluator=Scripted([0.25, 0.5]))
    events = EventAccumulator(str(run / "tensorboard"))
    events.Reload()
    assert {"eval/acc", "eval/other", "eval/seconds", "train/loss"} <= set(events.Tags()["scalars"])
    assert [(e.step, e.value) for e in events.Scalars("eval/acc")] == [(2, 0.25), (4, 0.5)]


def test_scores_the_train_and_val_videos_of_the_actions_trained_on(toy_features: Path, tmp_path: Path) -> None:
    everything, one_action = Scripted([0.5]), Scripted([0.5])
    train(toy_features, tmp_path / "run", config("steps=1", "eval_every=1", "eval_metric=acc"), progress=False,
          evaluator=everything)
    assert everything.videos == ["toy0", "toy1", "toy2", "toy3", "toy4", "toy5"]
    (tmp_path / "b").mkdir()
    train(toy_features, tmp_path / "b" / "run", config("steps=1", "eval_every=1", "eval_metric=acc",
                                                       "data.actions=[b]"), progress=False, evaluator=one_action)
    assert one_action.videos == ["toy3", "toy4", "toy5"]


def test_an_unknown_metric_is_refused_without_eval_every_too(toy_features: Path, tmp_path: Path) -> None:
    """A misspelt --eval-metric failed only when a later run scored; now before anything is written."""
    with pytest.raises(VavaError, match=r"^eval_metric: 'bogus' is not one of acc, other$"):
        train(toy_features, tmp_path / "run", config("steps=1", "eval_metric=bogus"), progress=False,
              evaluator=Scripted([]))
    assert not (tmp_path / "run").exists()
