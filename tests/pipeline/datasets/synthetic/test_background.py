"""Background helpers of the synthetic generator (pipeline/datasets/synthetic/background.py): the hand's windows
and the progress through each background stretch."""
from __future__ import annotations

import numpy as np

from vava.pipeline.datasets.synthetic.background import _stretch_progress, hand_shown


def test_the_hand_shows_in_background_and_in_some_procedure_frames():
    labels = np.r_[np.full(10, 4), np.repeat([0, 1, 2, 3], 10), np.full(5, 4), np.full(10, 4)]
    shown = np.array([hand_shown(labels, 4, 0.5, np.random.default_rng(k)) for k in range(40)])
    background = labels == 4
    assert shown[:, background].mean() > 0.6 and 0.05 < shown[:, ~background].mean() < 0.4
    assert not hand_shown(labels, 4, 0.0, np.random.default_rng(0)).any()


def test_stretch_progress():
    on = np.array([0, 1, 1, 0, 1, 1, 1, 1], dtype=bool)
    np.testing.assert_allclose(_stretch_progress(on), [0, 0.25, 0.75, 0, 0.125, 0.375, 0.625, 0.875])
