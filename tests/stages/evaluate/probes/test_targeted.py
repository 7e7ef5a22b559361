"""The targeted probe: accuracy on unflagged, out-of-order and repeated val frames and background F1,
on 1-D clusters whose predictions are known (each frame goes to the nearest cluster centre)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.stages.evaluate.helpers import video, write_h5
from vava.core.records import FLAG_BACKGROUND as B
from vava.core.records import FLAG_CUTAWAY as C
from vava.core.records import FLAG_OUT_OF_ORDER as O
from vava.core.records import FLAG_REPEATED as R
from vava.stages.evaluate.probes import classification
from vava.stages.evaluate.probes.targeted import background_f1
from vava.stages.evaluate.report import evaluate_embeddings, write_report

PHASES = ["bg", "reach", "grasp", "lift"]  # background label 0
CENTRES = {0: 6.0, 1: 0.0, 2: 2.0, 3: 4.0}

# Val frame by frame: x (a cluster centre, so the prediction is that cluster's label), label, flags.
#   unflagged 0-3: frame 3 sits in lift's cluster but is labelled grasp    -> 3 of 4 right
#   out of order 4-6 and 12: frames 5, 6 sit in grasp's cluster             -> 2 of 4 right
#   background 7-9: frame 9 predicted reach (FN); frame 11 predicted bg (FP) -> TP 2, F1 = 2*2 / (3 + 3);
#     7 and 9 idle (1 of 2 recognised), 8 a cut-away (recognised), no distraction
#   repeated 10-12: frame 11 sits in bg's cluster                          -> 2 of 3 right
#   frame 13 is unlabelled: never scored
X = [0, 0, 2, 4, 4, 2, 2, 6, 6, 0, 2, 6, 0, 0]
Y = [1, 1, 2, 2, 3, 3, 3, 0, 0, 0, 2, 2, 1, -1]
FLAGS = [0, 0, 0, 0, O, O, O, B, B | C, B, R, R, R | O, 0]
EXPECTED = {"unflagged_accuracy": 3 / 4, "out_of_order_accuracy": 2 / 4, "repeated_accuracy": 2 / 3,
            "background_f1": 2 / 3, "idle_background_accuracy": 1 / 2, "cutaway_background_accuracy": 1.0,
            "distraction_background_accuracy": None}
NO_KINDS = {"idle_background_accuracy": None, "cutaway_background_accuracy": None,
            "distraction_background_accuracy": None}


def clusters(id: str, centres: dict[int, float], action: str, phases: list[str], bg: int) -> dict:
    """A train video: three frames around each centre, labelled with its phase."""
    labels = np.repeat(list(centres), 3)
    x = np.array([centres[label] for label in labels]) + np.tile([-0.1, 0.0, 0.1], len(centres))
    return video(id, x, labels, "train", action, phases, bg)


@pytest.fixture
def wild(tmp_path: Path) -> Path:
    """Action a: flagged frames and background; action b: nothing flagged, no background label, all right."""
    b_centres, b_phases = {0: 0.0, 1: 5.0}, ["p0", "p1"]
    videos = [clusters(f"a{i}", CENTRES, "a", PHASES, 0) for i in range(2)]
    videos += [video("av", X, Y, "val", "a", PHASES, bg=0, flags=FLAGS)]
    videos += [clusters(f"b{i}", b_centres, "b", b_phases, -1) for i in range(2)]
    videos += [video("bv", [0, 0, 5, 5], [0, 0, 1, 1], "val", "b", b_phases)]
    return write_h5(tmp_path / "e.h5", videos)


def test_targeted_metrics_by_hand(wild: Path, tmp_path: Path) -> None:
    report = evaluate_embeddings(wild, tasks=("targeted",))
    a, b = report["per_action"]["a"], report["per_action"]["b"]
    assert a["targeted"] == pytest.approx(EXPECTED)
    assert a["targeted_frames"] == {"unflagged_accuracy": 4, "out_of_order_accuracy": 4, "repeated_accuracy": 3,
                                    "background_f1": 3, "idle_background_accuracy": 2,
                                    "cutaway_background_accuracy": 1, "distraction_background_accuracy": 0}
    assert a["targeted_skipped"] == {"distraction_background_accuracy": "no val frame is distraction background"}
    assert b["targeted"] == {"unflagged_accuracy": 1.0, "out_of_order_accuracy": None, "repeated_accuracy": None,
                             "background_f1": None, **NO_KINDS}
    no_label = "the videos have no background label"
    assert b["targeted_skipped"] == {"out_of_order_accuracy": "no labelled val frame flagged out of order",
                                     "repeated_accuracy": "no labelled val frame flagged repeated",
                                     "background_f1": no_label}  # the kinds' reason is the F1's: said once
    # the mean over the actions that produced a number
    assert report["results"]["targeted"] == pytest.approx({**EXPECTED, "unflagged_accuracy": (3 / 4 + 1) / 2})

    _, md_path = write_report(tmp_path / "run", report)
    markdown = md_path.read_text()
    assert "| Unflagged acc | Out-of-order acc | Repeated acc | Background F1 |" in markdown
    assert "| 87.50 | 50.00 | 66.67 | 66.67 |" in markdown
    assert "| Out-of-order acc | 50.00 | 4 |" in markdown
    assert "- Background F1 (b): the videos have no background label" in markdown


def test_background_dropped_leaves_the_accuracies_and_nulls_the_f1(wild: Path) -> None:
    report = evaluate_embeddings(wild, tasks=("targeted",), background="drop")
    a = report["per_action"]["a"]
    # without background, frame 11 goes to lift's cluster (4): still wrong, so the accuracies stay
    assert a["targeted"] == pytest.approx({**EXPECTED, "background_f1": None, **NO_KINDS})
    dropped = "background frames are dropped (background drop)"
    assert a["targeted_skipped"] == {"background_f1": dropped}
    assert report["results"]["targeted"]["background_f1"] is None


def test_background_label_without_background_frames_in_val(tmp_path: Path) -> None:
    videos = [clusters(f"t{i}", CENTRES, "a", PHASES, 0) for i in range(2)]
    videos.append(video("v", [0, 2, 6], [1, 2, 2], "val", phases=PHASES, bg=0))  # frame 2 predicted bg, none is
    per_action = evaluate_embeddings(write_h5(tmp_path / "e.h5", videos), tasks=("targeted",))["per_action"]["a"]
    assert per_action["targeted"]["unflagged_accuracy"] == pytest.approx(2 / 3)
    assert per_action["targeted"]["background_f1"] is None
    assert per_action["targeted_skipped"]["background_f1"] == "no val frame is labelled background"


def test_background_f1() -> None:
    predicted = np.array([1, 1, 0, 0, 1], dtype=bool)
    true = np.array([1, 0, 1, 0, 1], dtype=bool)  # TP 2, FP 1, FN 1
    assert background_f1(predicted, true) == pytest.approx(2 * 2 / (2 * 2 + 1 + 1))
    assert background_f1(np.zeros(3, dtype=bool), np.ones(3, dtype=bool)) == 0.0
    assert background_f1(np.ones(3, dtype=bool), np.zeros(3, dtype=bool)) is None


def test_classification_and_targeted_share_one_fit(wild: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fits = []
    real = classification.predict
    monkeypatch.setattr(classification, "predict", lambda train, x, kind: fits.append(len(train)) or real(train, x, kind))
    report = evaluate_embeddings(wild, tasks=("classification", "targeted"), fractions=(0.5, 1.0),
                                 time_reference=False)  # the time-only row would fit its own
    assert fits == [1, 2, 1, 2]  # per action: first video (0.5), both videos (1.0, shared with targeted)
    # the classification at 1.0 is that same fit on every labelled val frame: frames 3, 5, 6, 9, 11 of 13 wrong
    assert report["per_action"]["a"]["classification"]["1.0"] == pytest.approx(8 / 13)
