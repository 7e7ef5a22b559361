"""Few-shot classification (stages/evaluate/probes/few_shot.py): episodes drawn as TCC draws them, the t interval,
and few-shot and robustness in a report."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from tests.stages.evaluate.helpers import record, separable, write_h5
from vava.stages.evaluate.probes import few_shot
from vava.stages.evaluate.report import evaluate_embeddings


def test_few_shot_draws_like_tcc(monkeypatch: pytest.MonkeyPatch) -> None:
    train = [record([[float(i)]], [0], f"t{i}") for i in range(6)]
    drawn = []
    monkeypatch.setattr(few_shot, "accuracy", lambda videos, val, kind: drawn.append([v.id for v in videos]) or 0.5)
    result = few_shot.few_shot_accuracies(train, (np.zeros((1, 1)), np.zeros(1)), (1, 2, 9), 3, "svm")
    np.random.seed(42)
    expected = [[f"t{i}" for i in np.random.permutation(6)[:k]] for k in (1, 2) for _ in range(3)]
    assert drawn == expected and sorted(result) == [1, 2]  # k = 9 > 6 videos is left out
    mean, half = few_shot.t_interval([0.5, 0.6, 0.7, 0.9])
    low, high = stats.t.interval(0.95, 3, loc=mean, scale=stats.sem([0.5, 0.6, 0.7, 0.9]))
    assert (mean - half, mean + half) == pytest.approx((low, high))


def test_few_shot_and_robustness_in_report(tmp_path: Path) -> None:
    videos = [separable(f"t{i}", "train") for i in range(4)] + [separable("v1", "val")]
    report = evaluate_embeddings(write_h5(tmp_path / "e.h5", videos), tasks=("few_shot", "robustness"),
                                 few_shot_ks=(1, 2), few_shot_episodes=4, robustness_seeds=3, fractions=(0.5,))
    results = report["results"]
    assert results["few_shot"]["1"]["mean"] == pytest.approx(1.0) and len(results["few_shot"]["2"]["episodes"]) == 4
    assert results["robustness"]["0.5"] == {"mean": pytest.approx(1.0), "std": pytest.approx(0.0),
                                            "runs": pytest.approx([1.0] * 3)}
