"""Phase progression (stages/evaluate/probes/progression.py): targets and R^2 by hand."""
from __future__ import annotations

import numpy as np
import pytest

from tests.stages.evaluate.helpers import record
from vava.core.embeddings_file import VideoEmbeddings
from vava.stages.evaluate.probes.progression import action_phases, progress_targets, progression_r2
from vava.stages.evaluate.skip import ProbeSkipped

# --------------------------------------------------------------------------------------------
# Phase progression


def test_progress_targets_hand_computed() -> None:
    phases = np.arange(3)
    t = np.arange(6)
    targets = progress_targets(np.array([0, 0, 1, 1, 1, 2]), phases)
    assert np.allclose(targets, np.stack([(t - 1) / 6, (t - 4) / 6], axis=1))


def test_progress_targets_missing_phase_fallback() -> None:
    phases = np.arange(3)
    # phase 1 missing: tau_1 = first frame of phase 2 = 2
    assert np.allclose(progress_targets(np.array([0, 0, 2, 2]), phases)[:, 1], (np.arange(4) - 2) / 4)
    # the next higher phase present is phase 2, even though phase 3 starts earlier (non-monotonic order)
    assert np.allclose(progress_targets(np.array([0, 0, 3, 3, 2, 2]), np.arange(4))[:, 1], (np.arange(6) - 4) / 6)
    # phases 1 and 2 missing: tau_1 = T - 1
    assert np.allclose(progress_targets(np.array([0, 0, 0]), phases), [[-2 / 3, -2 / 3], [-1 / 3, -1 / 3], [0, 0]])
    # phase 0 missing: tau_0 = first frame of phase 1
    assert np.allclose(progress_targets(np.array([1, 1, 2]), phases)[:, 0], np.arange(3) / 3)
    # unlabelled frames keep their place on the time axis
    assert np.allclose(progress_targets(np.array([-1, 0, 1, -1]), np.arange(2))[:, 0], (np.arange(4) - 1) / 4)


def test_action_phases_skip_background() -> None:
    keep = record(np.zeros((3, 1)), [0, 1, 2])
    assert action_phases([VideoEmbeddings("v", "val", "a", keep.embeddings, keep.labels, ("a", "b", "bg"), 2)]
                         ).tolist() == [0, 1]
    assert action_phases([VideoEmbeddings("v", "val", "a", keep.embeddings, keep.labels, ("bg", "a", "b"), 0)]
                         ).tolist() == [1, 2]


def test_progression_r2_perfect_and_by_hand() -> None:
    labels = [0, 0, 0, 1, 1, 1, 2, 2]
    exact = [record(np.arange(8) / 8, labels, f"v{i}") for i in range(3)]  # embedding = t / T: targets are linear
    assert progression_r2(exact[:2], exact[2:], np.arange(3)) == pytest.approx([1.0, 1.0])
    rng = np.random.default_rng(0)
    noisy = [record(np.stack([np.arange(8) / 8 + 0.1 * rng.standard_normal(8), rng.standard_normal(8)], 1), labels,
                    f"n{i}") for i in range(4)]
    x = np.concatenate([np.c_[v.embeddings, np.ones(8)] for v in noisy])
    r = np.concatenate([progress_targets(v.labels, np.arange(3)) for v in noisy])
    coef = np.linalg.lstsq(x[:16], r[:16], rcond=None)[0]
    residual = ((r[16:] - x[16:] @ coef) ** 2).sum(0)
    expected = 1 - residual / ((r[16:] - r[16:].mean(0)) ** 2).sum(0)
    assert progression_r2(noisy[:2], noisy[2:], np.arange(3)) == pytest.approx(expected)
    with pytest.raises(ProbeSkipped, match="2 phases"):
        progression_r2(exact[:2], exact[2:], np.arange(1))
