"""Kendall's tau (stages/evaluate/probes/kendall.py) against scipy and hand-computed values."""
from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from tests.stages.evaluate.helpers import ramp
from vava.stages.evaluate.probes.kendall import kendalls_tau, tau_b_against_order
from vava.stages.evaluate.skip import ProbeSkipped

# --------------------------------------------------------------------------------------------
# Kendall's tau


def test_tau_b_matches_scipy_with_ties() -> None:
    rng = np.random.default_rng(0)
    values = rng.integers(0, 6, size=(40, 17))  # many ties
    expected = [stats.kendalltau(np.arange(17), row).statistic for row in values]
    assert np.allclose(tau_b_against_order(values), expected)


def test_tau_b_hand_values() -> None:
    # [0, 0, 1, 2]: 6 pairs, 1 tied, 0 discordant -> (5 - 0) / sqrt(6 * 5)
    taus = tau_b_against_order(np.array([[0, 1, 2, 3], [3, 2, 1, 0], [0, 0, 1, 2], [4, 4, 4, 4]]))
    assert taus[:3] == pytest.approx([1.0, -1.0, 5 / np.sqrt(30)])
    assert np.isnan(taus[3])


def test_identical_and_reversed_videos() -> None:
    assert kendalls_tau([ramp(6), ramp(6), ramp(6)]).mean == pytest.approx(1.0)
    reversed_pair = kendalls_tau([ramp(6), ramp(6)[::-1]])
    assert reversed_pair.mean == pytest.approx(-1.0) and reversed_pair.pairs == 2


def test_constant_embeddings_pairs_are_dropped() -> None:
    result = kendalls_tau([ramp(5), ramp(5), np.ones((5, 2), np.float32)])
    assert result.mean == pytest.approx(1.0)
    assert (result.pairs, result.nan_pairs) == (6, 4)  # both directions with the constant video are NaN
    with pytest.raises(ProbeSkipped, match="undefined"):
        kendalls_tau([np.ones((4, 2)), np.ones((4, 2))])


def test_ties_in_matches_and_stride() -> None:
    query = np.array([[0.0], [1.0], [10.0], [20.0]])
    candidates = np.array([[0.0], [10.0], [20.0]])
    taus = kendalls_tau([query, candidates]).taus  # query matches [0, 0, 1, 2]; candidates match [0, 2, 3]
    assert taus[0, 1] == pytest.approx(5 / np.sqrt(30))
    assert taus[1, 0] == pytest.approx(1.0)
    # stride 2 keeps frames 0 and 2 of each: [0, 10] vs [0, 20] -> perfect order both ways
    assert kendalls_tau([query, candidates], stride=2).mean == pytest.approx(1.0)


def test_video_shorter_than_stride_gives_dropped_pair() -> None:
    result = kendalls_tau([ramp(8), ramp(8), ramp(3)], stride=4)  # the short video keeps one frame
    assert result.mean == pytest.approx(1.0) and result.nan_pairs == 4


def test_kendall_matches_reference_loop_and_cosine_ignores_scale() -> None:
    from scipy.spatial.distance import cdist

    rng = np.random.default_rng(1)
    videos = [np.cumsum(rng.standard_normal((n, 4)), axis=0) for n in (9, 12, 7)]
    expected = [stats.kendalltau(np.arange(len(a)), cdist(a, b, "sqeuclidean").argmin(axis=1)).statistic
                for i, a in enumerate(videos) for j, b in enumerate(videos) if i != j]
    assert kendalls_tau(videos).mean == pytest.approx(np.nanmean(expected))
    scaled = [v * s for v, s in zip(videos, (1.0, 3.0, 0.5))]
    assert kendalls_tau(scaled, distance="cosine").mean == pytest.approx(kendalls_tau(videos, distance="cosine").mean)
