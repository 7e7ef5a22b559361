"""The supervised per-frame classifier (docs/method.md#supervised)."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from tests.stages.train.objectives.reference import LENGTHS, STEPS, E, assert_rel, pairs
from vava.stages.train.objectives.supervised import SupervisedConfig, SupervisedLoss


def test_supervised_reference_value_and_labels() -> None:
    torch.manual_seed(0)
    objective = SupervisedLoss(SupervisedConfig(num_classes=5))
    labels = 5 * STEPS[:2] // LENGTHS[:2, None]
    loss, components = objective(pairs(E[:2], labels=labels))
    assert_rel(loss, 1.73205)
    partial = labels.clone()
    partial[0, :7] = -1
    known = partial.flatten() != -1
    expected = F.cross_entropy(objective.head(E[:2].reshape(40, 128))[known], partial.flatten()[known])
    assert_rel(objective(pairs(E[:2], labels=partial))[0], float(expected.detach()), 1e-6)
    z = E[:2].clone().requires_grad_()
    loss, components = objective(pairs(z, labels=torch.full((2, 20), -1)))
    loss.backward()
    assert float(loss.detach()) == 0 and bool(torch.isfinite(z.grad).all()) and set(components) >= {"accuracy"}
    bad = labels.clone()
    bad[1, 3] = 5
    with pytest.raises(ValueError, match="label 5"):
        objective(pairs(E[:2], labels=bad))
    with pytest.raises(ValueError, match="embedding_dim"):
        objective(pairs(E[:2, :, :16], labels=labels))
