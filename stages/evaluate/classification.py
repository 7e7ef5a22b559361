"""Phase classification probes: a classifier fit on train frames, scored on val frames.

Protocols: docs/evaluation.md#classification, #few-shot and #robustness.

Frames labelled -1 (unknown) are neither trained on nor scored. Accuracy is the micro average over
every labelled frame of every val video.
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from scipy import stats
from sklearn.base import ClassifierMixin
from sklearn.dummy import DummyClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC

from vava.core.embeddings_file import UNLABELLED, VideoEmbeddings
from vava.core.validation import option_error
from vava.stages.evaluate.skip import ProbeSkipped

CLASSIFIERS = ("svm", "logistic", "svm-standardised")
FEW_SHOT_SEED = 42  # TCC seeds numpy's global generator with 42 once; RandomState(42) draws the same stream

Frames = tuple[np.ndarray, np.ndarray]  # (X (n, D), y (n,)) labelled frames only


def make_classifier(kind: str) -> ClassifierMixin:
    """svm: TCC/LAV's RBF SVC (gamma 'scale' = 1 / (D * Var(X))); logistic: CARL's multinomial model;
    svm-standardised: the same SVC on features z-scored with the training frames' mean and sd, so a few
    high-variance dimensions cannot set the kernel width for all (docs/evaluation.md#classification)."""
    if kind in ("svm", "svm-standardised"):
        svm = SVC(kernel="rbf", C=1.0, gamma="scale", decision_function_shape="ovo")
        return svm if kind == "svm" else make_pipeline(StandardScaler(), svm)
    if kind == "logistic":
        return LogisticRegression(C=1.0, solver="lbfgs", max_iter=100_000)
    raise option_error("classifier", f"{kind!r} is not one of {', '.join(CLASSIFIERS)}")


def train_count(fraction: float, videos: int) -> int:
    """n_f = max(1, floor(f * N)); the tolerance keeps float error (0.29 * 100 = 28.999...) from losing a video."""
    return max(1, math.floor(fraction * videos + 1e-9))


def labelled_frames(videos: Sequence[VideoEmbeddings]) -> Frames:
    """All labelled frames of `videos`, concatenated in order."""
    x = np.concatenate([v.embeddings for v in videos])
    y = np.concatenate([v.labels for v in videos])
    keep = y != UNLABELLED
    return x[keep], y[keep]


def require_two_phases(train: Sequence[VideoEmbeddings]) -> None:
    """Skip a probe whose train videos carry fewer than two phase labels.

    A classifier fit on one class predicts it for every frame: its score would measure how common
    that phase is in val, not the embedding.
    """
    labels = np.unique(np.concatenate([v.labels for v in train]))
    labels = labels[labels != UNLABELLED]
    if labels.size < 2:
        found = ", ".join(str(label) for label in labels) or "none"
        raise ProbeSkipped(f"the train videos carry fewer than 2 phase labels (found: {found}); a classifier needs 2")


def labelled_flags(videos: Sequence[VideoEmbeddings]) -> np.ndarray:
    """The flag bits of the frames `labelled_frames` returns, in the same order."""
    return np.concatenate([v.flags[v.labels != UNLABELLED] for v in videos])


def predict(train: Sequence[VideoEmbeddings], frames: np.ndarray, classifier: str) -> np.ndarray:
    """Fit on every labelled frame of `train`, return the predicted label of each row of `frames`.

    With a single class in the training frames, every frame is predicted as that class.
    """
    x, y = labelled_frames(train)
    model = DummyClassifier(strategy="most_frequent") if np.unique(y).size == 1 else make_classifier(classifier)
    return model.fit(x, y).predict(frames)


def accuracy(train: Sequence[VideoEmbeddings], val: Frames, classifier: str) -> float:
    """The fraction of `val` frames classified right by the classifier fit on `train` (`predict`)."""
    return float(np.mean(predict(train, val[0], classifier) == val[1]))


def first_videos(train: Sequence[VideoEmbeddings], fraction: float) -> Sequence[VideoEmbeddings]:
    """The paper-comparable training set at a label fraction: the first n_f train videos in file order."""
    return train[: train_count(fraction, len(train))]


def subset_accuracies(train: Sequence[VideoEmbeddings], val: Frames, fraction: float, seeds: int,
                      classifier: str) -> list[float]:
    """Robustness column: n_f train videos drawn at random with seeds 0..seeds-1, one accuracy each."""
    n = train_count(fraction, len(train))
    picks = [np.sort(np.random.RandomState(seed).permutation(len(train))[:n]) for seed in range(seeds)]
    return [accuracy([train[i] for i in pick], val, classifier) for pick in picks]


def few_shot_accuracies(train: Sequence[VideoEmbeddings], val: Frames, ks: Sequence[int], episodes: int,
                        classifier: str) -> dict[int, list[float]]:
    """Few-shot (TCC): per k, `episodes` draws of the first k videos of a random permutation.

    One generator seeded once serves every k in the given order; a k above the number of train
    videos is left out (and draws nothing).
    """
    rng = np.random.RandomState(FEW_SHOT_SEED)
    result = {}
    for k in ks:
        if k > len(train):
            continue
        draws = [rng.permutation(len(train))[:k] for _ in range(episodes)]
        result[k] = [accuracy([train[i] for i in draw], val, classifier) for draw in draws]
    return result


def t_interval(values: Sequence[float]) -> tuple[float, float]:
    """Mean and the half-width of its 95 % t-interval (df = n - 1); NaN width for one value."""
    values = np.asarray(values, dtype=np.float64)
    if values.size < 2:
        return float(values.mean()), math.nan
    sem = values.std(ddof=1) / math.sqrt(values.size)
    return float(values.mean()), float(stats.t.ppf(0.975, values.size - 1) * sem)
