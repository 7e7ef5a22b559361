"""TCN (docs/method.md#tcn): n-pairs and semi-hard triplet reference values."""
from __future__ import annotations

import math

import pytest
import torch

from tests.stages.train.objectives.reference import EN, F64, REL, STEPS, E, assert_rel, pairs
from vava.stages.train.objectives.tcn import TcnConfig, TcnLoss, npairs_loss, triplet_semihard_loss

# ---------------------------------------------------------------- TCN (docs/method.md#tcn)


def test_tcn_reference_values() -> None:
    per_video, kept = npairs_loss(E[:2])
    assert per_video.tolist() == pytest.approx([12.6049, 17.1165], rel=REL)
    assert kept.tolist() == [1.0, 1.0]
    assert_rel(per_video.mean(), 14.8607)
    assert_rel(npairs_loss(E[:2] / math.sqrt(128))[0].mean(), 2.30731)
    assert_rel(TcnLoss(TcnConfig(positive_window=None))(pairs(E[:2]))[0], 14.8607)
    loss, has_pairs = triplet_semihard_loss(EN[:1], STEPS[:1])
    assert_rel(loss, 0.155818)
    assert bool(has_pairs.all())
    same = pairs(torch.cat([E[:1], E[:1]]), torch.stack([STEPS[0], STEPS[0]]))
    assert_rel(TcnLoss(TcnConfig(loss_type="triplet"))(same)[0], 0.155818)


def test_tcn_orthogonal_limit() -> None:
    c, pairs_count = 10.0, 6
    anchors = c * torch.eye(pairs_count, 8, dtype=F64)
    z = torch.stack([anchors, anchors], dim=1).reshape(1, 2 * pairs_count, 8)  # P = A
    assert_rel(npairs_loss(z, reg_lambda=0.002)[0], 0.25 * 0.002 * 2 * c ** 2, 1e-9)


def test_tcn_positive_window() -> None:
    per_video, kept = npairs_loss(E[:2], STEPS[:2], positive_window=5)
    gaps = STEPS[:2, 1::2] - STEPS[:2, 0::2]
    assert kept.tolist() == pytest.approx(((gaps >= 1) & (gaps <= 5)).double().mean(-1).tolist())
    assert_rel(per_video[0], 12.6049)  # every gap of video 0 is within 5 frames
    assert float(per_video[1]) != pytest.approx(17.1165, rel=1e-3)
    _, components = TcnLoss()(pairs(E[:2]))
    assert float(components["valid_rows"]) == pytest.approx(0.9)
