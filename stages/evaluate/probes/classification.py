"""Phase classification: a classifier on the first n = max(1, floor(f N)) train videos
(docs/evaluation.md#classification), and the classifier kernel the few-shot, robustness, targeted
and progression probes share.

Frames labelled -1 (unknown) are neither trained on nor scored. Accuracy is the micro average over
every labelled frame of every val video.
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from sklearn.base import ClassifierMixin
from sklearn.dummy import DummyClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC

from vava.core.embeddings_file import UNLABELLED, VideoEmbeddings
from vava.core.validation import option_error
from vava.stages.evaluate.probes.base import FRACTION, Action, Column, Option, Probe, Values, key, mean, percent
from vava.stages.evaluate.skip import ProbeSkipped

CLASSIFIERS = ("svm", "logistic", "svm-standardised")

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


def val_frames(action: Action) -> Frames:
    """Every labelled val frame of `action` (made once per action, shared by the classifier probes)."""
    return action.shared("val_frames", lambda: labelled_frames(action.val))


def val_flags(action: Action) -> np.ndarray:
    """The flag bits of `val_frames(action)`."""
    return action.shared("val_flags", lambda: labelled_flags(action.val))


def val_predictions(action: Action, fraction: float, classifier: str) -> np.ndarray:
    """Labels of `val_frames(action)` predicted by `classifier` fit on the first n_f train videos.

    Each (n_f, classifier) is fit once per action, so probes reading the same fit share it.
    """
    train = first_videos(action.train, fraction)
    return action.shared(("predicted", len(train), classifier),
                         lambda: predict(train, val_frames(action)[0], classifier))


FRACTIONS = Option("fractions", (0.1, 0.5, 1.0), "Label fractions (share of train videos) for classification.",
                   check=FRACTION)
CLASSIFIER = Option("classifier", "svm", choices=CLASSIFIERS)  # svm (TCC/LAV) | logistic (CARL)


class Classification(Probe):
    name = "classification"
    options = (FRACTIONS, CLASSIFIER)
    default = needs_train = needs_labels = True
    rank = 0

    def run(self, action: Action) -> Values:
        require_two_phases(action.train)
        truth, fractions = val_frames(action)[1], self.o.fractions
        return {"classification": {key(f): float(np.mean(val_predictions(action, f, self.o.classifier) == truth))
                                   for f in fractions},
                "classification_train_videos": {key(f): train_count(f, len(action.train)) for f in fractions}}

    def aggregate(self, per_action: Sequence[Values]) -> Values:
        return {key(f): mean(per_action, "classification", key(f)) for f in self.o.fractions}

    @classmethod
    def columns(cls, options: Mapping[str, Any]) -> list[Column]:
        return [Column(f"Classification {f}", lambda values, f=f: percent(accuracy_at(values, f)))
                for f in options["fractions"]]

    @classmethod
    def provenance(cls, options: Mapping[str, Any]) -> str:
        return f"classifier: {options['classifier']}"

    @classmethod
    def protocol(cls, options: Mapping[str, Any]) -> str:
        return ("- Classification: trained on all labelled frames of the first n = max(1, floor(f N)) train videos "
                "in natural id order, accuracy over every labelled val frame (frames labelled -1 are ignored).")


def accuracy_at(values: Values, fraction: object) -> float | None:
    """The classification accuracy at `fraction` in results or one action's values (None: not computed)."""
    return (values.get("classification") or {}).get(str(fraction))
