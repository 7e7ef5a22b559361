"""Alignment accuracy on two 1-D videos whose DTW path and nearest neighbours are worked out by hand."""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from tests.stages.evaluate.helpers import record, video, write_h5
from vava.core.correspondence import dtw_path
from vava.core.records import FLAG_BACKGROUND, FLAG_CUTAWAY
from vava.stages.evaluate.probes.alignment import alignment_accuracy, frame_scores
from vava.stages.evaluate.report import evaluate_embeddings

# Costs |a_i - b_j|; the DTW path is (0,0) (1,0) (2,1) (2,2) (3,3).
A_X, A_Y = [0.0, 0.8, 2.0, 3.0], [0, 1, 1, 1]
B_X, B_Y = [0.0, 2.0, 2.1, 3.0], [0, 1, 1, -1]
# DTW, a's side: a0 -> b0 right, a1 -> b0 wrong, a2 -> b1, b2 right, a3 -> b3 unlabelled (not scored): 2/3.
#      b's side: b0 -> a0 right and a1 wrong (1/2), b1 -> a2 right, b2 -> a2 right, b3 unlabelled: 2.5/3.
DTW = (2 / 3 + 2.5 / 3) / 2
# Nearest: a0 -> b0 right, a1 -> b0 wrong, a2 -> b1 right, a3 -> b3 unlabelled: 2/3;
#          b0 -> a0, b1 -> a2, b2 -> a2 right, b3 unlabelled: 1.
NEAREST = (2 / 3 + 1) / 2


def test_the_worked_example_path() -> None:
    path = dtw_path(np.array(A_X)[:, None], np.array(B_X)[:, None])
    assert path.tolist() == [[0, 0], [1, 0], [2, 1], [2, 2], [3, 3]]


def test_frame_scores_by_hand() -> None:
    path = np.array([[0, 0], [1, 0], [2, 1], [2, 2], [3, 3]])
    np.testing.assert_allclose(frame_scores(path, np.array(A_Y), np.array(B_Y)), [1, 0, 1, np.nan])
    np.testing.assert_allclose(frame_scores(path[:, ::-1], np.array(B_Y), np.array(A_Y)), [0.5, 1, 1, np.nan])
    assert np.isnan(frame_scores(path, np.full(4, -1), np.array(B_Y))).all()


def test_alignment_accuracy_by_hand_and_unlabelled_pairs_left_out() -> None:
    a, b = record(A_X, A_Y, "a"), record(B_X, B_Y, "b")
    no_background = {"idle": None, "cutaway": None, "distraction": None}
    for videos in ([a, b], [a, b, record([0.0, 1.0, 2.0], [-1, -1, -1], "c")]):
        found = alignment_accuracy(videos)
        assert (found["dtw"], found["nearest"]) == pytest.approx((DTW, NEAREST))
        assert found["dtw_background"] == no_background
    assert alignment_accuracy([a]) == {"dtw": None, "nearest": None, "dtw_background": no_background}


def test_background_matched_to_background_counts_as_right_and_is_scored_per_kind() -> None:
    """Label 0 is background. a: idle background, procedure; b: cut-away background, procedure, then
    idle background that DTW matches to a's procedure frame 2 (wrong)."""
    bg, cut = FLAG_BACKGROUND, FLAG_BACKGROUND | FLAG_CUTAWAY
    a = replace(record([0.0, 0.0, 5.0], [0, 0, 1], "a"), flags=np.array([bg, bg, 0], dtype=np.uint8),
                background_label=0)
    b = replace(record([0.0, 5.0, 5.0, 5.1], [0, 1, 1, 0], "b"), flags=np.array([cut, 0, 0, bg], dtype=np.uint8),
                background_label=0)
    # DTW path (0,0) (1,0) (2,1) (2,2) (2,3): a0, a1 -> b0 right; a2 -> b1, b2 right and b3 wrong (2/3);
    # b0 -> a0, a1 right; b1, b2 -> a2 right; b3 -> a2 wrong.
    found = alignment_accuracy([a, b])
    assert found["dtw"] == pytest.approx(((1 + 1 + 2 / 3) / 3 + 3 / 4) / 2)
    assert found["dtw_background"] == pytest.approx({"idle": (1.0 + 0.0) / 2, "cutaway": 1.0, "distraction": None})
    # background known by its label alone (no flags, as in a dataset without them) counts as idle
    plain = [replace(v, flags=np.zeros(v.num_frames, dtype=np.uint8)) for v in (a, b)]
    assert alignment_accuracy(plain)["dtw_background"] == pytest.approx({"idle": (1.0 + (1.0 + 0.0) / 2) / 2,
                                                                         "cutaway": None, "distraction": None})


def test_report_holds_alignment_accuracy(tmp_path: Path) -> None:
    h5 = write_h5(tmp_path / "e.h5", [video("t0", [0, 2], [0, 1], "train"), video("a", A_X, A_Y), video("b", B_X, B_Y)])
    report = evaluate_embeddings(h5, tasks=("alignment",))
    assert report["results"]["alignment"]["dtw"] == pytest.approx(DTW)
    assert report["results"]["alignment"]["nearest"] == pytest.approx(NEAREST)
