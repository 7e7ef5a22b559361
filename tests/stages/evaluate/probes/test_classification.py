"""Phase classification (stages/evaluate/probes/classification.py): train counts, natural order, the standardised
SVM, unlabelled frames; a train split with one phase skips the classifier probes."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.stages.evaluate.helpers import record, separable, video, write_h5
from vava.core.embeddings_file import load_embeddings
from vava.stages.evaluate.probes import classification as cls
from vava.stages.evaluate.report import evaluate_embeddings


def test_train_count() -> None:
    assert [cls.train_count(f, 70) for f in (0.1, 0.5, 1.0)] == [7, 35, 70]
    assert [cls.train_count(0.5, 103), cls.train_count(0.1, 5), cls.train_count(0.29, 100)] == [51, 1, 29]


def test_classification_separable_and_first_videos_in_natural_order(tmp_path: Path) -> None:
    # natural order: t2 (right labels) < t10 (mirrored labels) < t11 (mirrored); plain sorting would put t10 first
    videos = [separable("t10", "train", flip=True), separable("t2", "train"), separable("t11", "train", flip=True),
              separable("v1", "val"), separable("v2", "val")]
    path = write_h5(tmp_path / "e.h5", videos)
    assert [v.id for v in load_embeddings(path).videos] == ["t2", "t10", "t11", "v1", "v2"]
    report = evaluate_embeddings(path, tasks=("classification",), fractions=(0.34, 1.0))
    assert report["results"]["classification"]["0.34"] == pytest.approx(1.0)  # n = 1: t2 only
    assert report["per_action"]["a"]["classification_train_videos"] == {"0.34": 1, "1.0": 3}
    assert report["results"]["classification"]["1.0"] < 0.5
    logistic = evaluate_embeddings(path, tasks=("classification",), fractions=(0.34,), classifier="logistic")
    assert logistic["results"]["classification"]["0.34"] == pytest.approx(1.0)


def test_standardised_svm_is_the_svm_on_z_scored_frames() -> None:
    rng = np.random.default_rng(0)
    # the phase is in dimension 0 (spread 1); dimension 1 is noise with spread 1000, which sets the plain
    # SVM's kernel width and hides dimension 0 from it
    phase = np.repeat([0, 1], 50)
    frames = np.c_[phase + 0.1 * rng.standard_normal(100), 1000 * rng.standard_normal(100)]
    train = [record(frames[::2].tolist(), phase[::2].tolist(), "t")]
    val = cls.labelled_frames([record(frames[1::2].tolist(), phase[1::2].tolist(), "v")])
    assert cls.accuracy(train, val, "svm") < 0.8
    assert cls.accuracy(train, val, "svm-standardised") == 1.0
    mean, sd = frames[::2].mean(axis=0), frames[::2].std(axis=0)
    by_hand = cls.make_classifier("svm").fit((frames[::2] - mean) / sd, phase[::2]).predict((frames[1::2] - mean) / sd)
    assert (cls.predict(train, val[0], "svm-standardised") == by_hand).all()


def test_classification_ignores_unlabelled_and_handles_one_class() -> None:
    train = [record([[0.0], [0.1], [5.0]], [0, 0, -1], "t")]  # one class left after dropping -1
    val = cls.labelled_frames([record([[0.0], [9.0], [4.0]], [0, -1, 1], "v")])
    assert val[1].tolist() == [0, 1]
    assert cls.accuracy(train, val, "svm") == pytest.approx(0.5)


# -- a train split with one phase: the classifier probes are skipped -------------------------------


def test_classifier_probes_skip_a_train_split_with_one_phase(tmp_path: Path) -> None:
    ramp = np.arange(6, dtype=np.float32)[:, None]
    videos = [video("t1", ramp, [1] * 6, split="train"), video("t2", ramp, [1, 1, 1, -1, -1, -1], split="train"),
              video("v1", ramp, [0, 0, 1, 1, 2, 2]), video("v2", ramp, [0, 1, 1, 1, 2, 2])]
    report = evaluate_embeddings(write_h5(tmp_path / "e.h5", videos), tasks=("classification", "few_shot", "kendall"),
                                 few_shot_ks=(1,), few_shot_episodes=2)
    reason = "the train videos carry fewer than 2 phase labels (found: 1); a classifier needs 2"
    assert report["skipped"] == [{"action": "a", "task": "classification", "reason": reason},
                                 {"action": "a", "task": "few_shot", "reason": reason}]
    assert report["results"]["classification"] == {"0.1": None, "0.5": None, "1.0": None}
    assert report["results"]["kendall"] is not None
