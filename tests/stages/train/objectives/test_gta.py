"""GTA (docs/method.md#gta): reference values, gradients and invariants."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from tests.stages.train.objectives.reference import EN, F64, E, assert_rel, pairs
from vava.stages.train.objectives.alignment import smooth_min, soft_dtw
from vava.stages.train.objectives.gta import FLT_MAX, GtaConfig, GtaLoss, contrastive_cost, cycle_matrix, gta_loss

# ---------------------------------------------------------------- GTA (docs/method.md#gta)


def test_gta_reference_values() -> None:
    cost = contrastive_cost(EN[0], EN[1], 0.1)
    assert_rel(soft_dtw(cost, 0.1, relaxation="prob"), 66.2843)
    assert_rel(soft_dtw(cost, 0.1, relaxation="softmin"), 66.2204)
    assert_rel(soft_dtw(contrastive_cost(EN[0].double(), EN[0].double(), 0.1), 0.1, relaxation="prob"), 0.0265627, 2e-5)
    assert_rel(gta_loss(EN)[0], 16.1676)
    assert_rel(gta_loss(EN[:2])[0], 16.2402)
    assert_rel(gta_loss(EN, GtaConfig(revcons=False))[0], 13.1865)
    assert_rel(gta_loss(EN, GtaConfig(relaxation="softmin"))[0], 16.1477)
    assert_rel(soft_dtw(cost, 0.1, relaxation="prob", border=FLT_MAX), 66.2843)


@pytest.mark.parametrize("relaxation, loss_value, norm", [("prob", 16.2402, 12.9955), ("softmin", 16.2234, 12.2050)])
def test_gta_gradient_norm(relaxation: str, loss_value: float, norm: float) -> None:
    z = EN[:2].double().requires_grad_()
    loss = gta_loss(z, GtaConfig(relaxation=relaxation))[0]
    loss.backward()
    assert_rel(loss, loss_value)
    assert_rel(z.grad.norm(), norm)


def test_gta_objective_groups() -> None:
    assert_rel(GtaLoss(GtaConfig(grouping="batch"))(pairs(E))[0], 16.1676)  # 2 pairs = GTA's 4 videos
    assert_rel(GtaLoss()(pairs(E[:2]))[0], 16.2402)
    per_pair = GtaLoss()(pairs(E))[0]
    assert_rel(per_pair, (float(gta_loss(EN[:2])[0]) + float(gta_loss(EN[2:])[0])) / 2)


def test_gta_invariants() -> None:
    cost = contrastive_cost(EN[0], EN[1, :13], 0.1)
    assert torch.allclose(torch.exp(-cost).sum(dim=0), torch.ones(13), atol=1e-6)
    tables = [soft_dtw(contrastive_cost(x, y, 0.1), 0.1, relaxation="prob", table=True)
              for x, y in ((EN[0], EN[1, :13]), (EN[1, :13], EN[0]))]
    cycle = cycle_matrix(*tables)
    assert cycle.shape == (20, 20) and torch.allclose(cycle.sum(-1), torch.ones(20), atol=1e-6)
    r = torch.randn(1000, 3, dtype=F64, generator=torch.Generator().manual_seed(8)) * 2
    for gamma in (0.1, 1.0):
        prob = smooth_min(r, gamma, "prob")
        assert bool((prob >= smooth_min(r, gamma, "softmin") - 1e-12).all())
        assert bool((r.amin(-1) <= prob + 1e-12).all()) and bool((prob <= r.amax(-1) + 1e-12).all())


def test_gta_borders_give_finite_gradients() -> None:
    z = EN.double().requires_grad_()
    for relaxation in ("prob", "softmin", "min"):
        loss = gta_loss(z, GtaConfig(relaxation=relaxation))[0]
        (grad,) = torch.autograd.grad(loss, z)
        assert bool(torch.isfinite(grad).all())
    cost = contrastive_cost(EN[0], EN[1], 0.1).requires_grad_()
    (grad,) = torch.autograd.grad(soft_dtw(cost, 0.1, relaxation="prob", table=True).sum(), cost)
    assert bool(torch.isfinite(grad).all())
    (grad_inf,) = torch.autograd.grad(soft_dtw(cost, 0.1, relaxation="prob", table=True, border=math.inf).sum(), cost)
    assert bool(torch.isnan(grad_inf).any())  # why the border is finite (docs/method.md#gta)


def test_gta_gradcheck() -> None:
    z = torch.randn(2, 4, 3, dtype=F64, generator=torch.Generator().manual_seed(9))
    z = F.normalize(z, dim=-1).requires_grad_()
    assert torch.autograd.gradcheck(lambda x: gta_loss(x, GtaConfig(gamma_f=0.5, gamma_s=0.5))[0], (z,))
