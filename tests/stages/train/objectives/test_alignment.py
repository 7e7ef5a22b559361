"""The shared alignment primitives: soft-DTW (docs/method.md#soft-dtw) and log-domain Sinkhorn."""
from __future__ import annotations

import math

import pytest
import torch

from tests.stages.train.objectives.reference import EN, F64, REL, E, assert_rel
from vava.stages.train.objectives.alignment import log_sinkhorn, pairwise_sq_dists, soft_dtw, soft_dtw_divergence

# ---------------------------------------------------------------- soft-DTW (docs/method.md#soft-dtw)

X64, Y64 = EN[0:1].double(), EN[1:2].double()


def sdtw(x: torch.Tensor, y: torch.Tensor, gamma: float) -> float:
    return float(soft_dtw(pairwise_sq_dists(x, y), gamma))


def shifted(x: torch.Tensor) -> torch.Tensor:
    return torch.cat([x[:, 1:], x[:, -1:]], dim=1)


def test_soft_dtw_reference_values() -> None:
    assert_rel(sdtw(X64, Y64, 0.1), 39.7915)
    assert_rel(sdtw(X64, Y64, 1.0), 28.1585)
    assert_rel(soft_dtw_divergence(X64, Y64, 1.0), 33.4543)
    assert_rel(soft_dtw_divergence(X64, Y64, 0.1), 39.7915)
    assert_rel(sdtw(X64, X64, 0.1), -2.81826e-08, 1e-3)
    assert_rel(sdtw(X64, X64, 1.0), -5.30047)
    assert abs(float(soft_dtw_divergence(X64, X64, 1.0))) < 1e-12
    assert_rel(sdtw(X64, shifted(X64), 0.1), 1.78550)
    assert_rel(sdtw(X64, shifted(X64), 1.0), -3.43753)
    assert_rel(soft_dtw_divergence(X64, shifted(X64), 0.1), 1.84043)
    assert_rel(soft_dtw_divergence(X64, shifted(X64), 1.0), 2.29111)
    assert_rel(sdtw(X64, X64.flip(1), 0.1), 37.5801)
    assert_rel(sdtw(X64, X64.flip(1), 1.0), 25.2346)
    assert_rel(soft_dtw_divergence(X64, X64.flip(1), 1.0), 30.5351)
    assert_rel(soft_dtw(pairwise_sq_dists(X64, Y64), relaxation="min"), 39.7915)
    batch = soft_dtw(pairwise_sq_dists(EN[[0, 1]], EN[[2, 3]]), 0.1)
    assert batch.tolist() == pytest.approx([41.0327, 40.0116], rel=REL)


def test_soft_dtw_raw_value_and_gradient() -> None:
    x = E[0:1].double().requires_grad_()
    value = soft_dtw(pairwise_sq_dists(x, E[1:2].double()), 1.0)
    value.backward()
    assert_rel(value, 5032.34)
    assert_rel(x.grad.norm(), 141.878)


def delannoy(m: int, n: int) -> int:
    return sum(math.comb(m, k) * math.comb(n, k) * 2 ** k for k in range(min(m, n) + 1))


def test_soft_dtw_bounds() -> None:
    assert delannoy(19, 19) == 45_849_429_914_943
    cost = pairwise_sq_dists(X64, Y64)
    hard = float(soft_dtw(cost, relaxation="min"))
    for gamma, bound in ((0.1, 36.6459), (1.0, 8.33514)):
        value = float(soft_dtw(cost, gamma))
        lower = hard - gamma * math.log(delannoy(19, 19))
        assert_rel(lower, bound)
        assert lower <= value <= hard
    assert float(soft_dtw(cost, 1e-3)) == pytest.approx(hard, abs=1e-3 * math.log(delannoy(19, 19)))
    assert sdtw(X64, X64, 0.1) <= 0 and sdtw(X64, X64, 1.0) <= 0
    assert float(soft_dtw_divergence(X64, shifted(X64), 0.1)) > 0
    assert float(soft_dtw_divergence(X64, X64.flip(1), 0.1)) > 0
    assert_rel(soft_dtw_divergence(Y64, X64, 1.0), float(soft_dtw_divergence(X64, Y64, 1.0)), 1e-10)


def test_soft_dtw_expected_alignment() -> None:
    g = torch.Generator().manual_seed(5)
    for n, m in ((7, 11), (9, 4), (1, 6)):
        cost = torch.rand(1, n, m, dtype=F64, generator=g).requires_grad_()
        soft_dtw(cost, 0.3).backward()
        expected = cost.grad[0]
        assert float(expected.min()) >= 0 and float(expected.max()) <= 1 + 1e-12
        assert float(expected[0, 0]) == pytest.approx(1) and float(expected[-1, -1]) == pytest.approx(1)
        assert max(n, m) - 1e-9 <= float(expected.sum()) <= n + m - 1 + 1e-9


def naive_soft_dtw(cost: torch.Tensor, gamma: float) -> torch.Tensor:
    """Cell-by-cell recursion with +inf borders (autograd through scalars)."""
    n, m = cost.shape
    inf = torch.tensor(math.inf, dtype=cost.dtype)
    table = [[torch.tensor(0.0, dtype=cost.dtype) if i == j == 0 else inf for j in range(m + 1)] for i in range(n + 1)]
    for i in range(1, n + 1):
        for j in range(1, m + 1):
            previous = torch.stack([table[i - 1][j - 1], table[i - 1][j], table[i][j - 1]])
            table[i][j] = cost[i - 1, j - 1] - gamma * torch.logsumexp(-previous / gamma, 0)
    return table[n][m]


def test_soft_dtw_matches_cell_loop_and_autograd() -> None:
    g = torch.Generator().manual_seed(7)
    cost = torch.rand(3, 6, 8, dtype=F64, generator=g) * 3
    for gamma in (0.1, 1.0):
        leaf = cost.clone().requires_grad_()
        soft_dtw(leaf, gamma).sum().backward()
        table_leaf = cost.clone().requires_grad_()
        soft_dtw(table_leaf, gamma, table=True)[:, -1, -1].sum().backward()  # autograd through the wavefront
        assert torch.allclose(leaf.grad, table_leaf.grad, rtol=1e-10, atol=1e-12)
        for p in range(3):
            one = cost[p].clone().requires_grad_()
            value = naive_soft_dtw(one, gamma)
            value.backward()
            assert_rel(soft_dtw(cost[p], gamma), float(value.detach()), 1e-12)
            assert torch.allclose(leaf.grad[p], one.grad, rtol=1e-9, atol=1e-12)
    table = soft_dtw(cost, 0.5, table=True)
    assert torch.allclose(table[:, -1, -1], soft_dtw(cost, 0.5))
    assert torch.allclose(table[:, 2, 3], soft_dtw(cost[:, :3, :4], 0.5))  # every entry is a prefix value


@pytest.mark.parametrize("relaxation, table", [("softmin", False), ("softmin", True), ("prob", True), ("min", False)])
def test_soft_dtw_gradcheck(relaxation: str, table: bool) -> None:
    cost = torch.rand(2, 4, 5, dtype=F64, generator=torch.Generator().manual_seed(2)).requires_grad_()
    assert torch.autograd.gradcheck(lambda c: soft_dtw(c, 0.3, relaxation=relaxation, table=table), (cost,))
    x = torch.randn(1, 3, 2, dtype=F64, generator=torch.Generator().manual_seed(4)).requires_grad_()
    y = torch.randn(1, 4, 2, dtype=F64, generator=torch.Generator().manual_seed(6))
    assert torch.autograd.gradcheck(lambda a: soft_dtw_divergence(a, y[:, :3], 0.5), (x,))
    assert torch.autograd.gradcheck(lambda a: soft_dtw(pairwise_sq_dists(a, y), 0.5), (x,))


def test_soft_dtw_shapes_and_errors() -> None:
    cost = torch.rand(2, 3, 5, 6)
    assert soft_dtw(cost).shape == (2, 3)
    assert soft_dtw(cost[0, 0]).shape == ()
    assert soft_dtw(cost, table=True).shape == cost.shape
    with pytest.raises(ValueError, match="relaxation"):
        soft_dtw(cost, relaxation="lse")
    with pytest.raises(ValueError, match="gamma"):
        soft_dtw(cost, 0.0)


def test_log_sinkhorn_general_marginals() -> None:
    log_kernel = torch.randn(3, 6, 4, dtype=F64, generator=torch.Generator().manual_seed(0))
    log_a = torch.log_softmax(torch.randn(3, 6, dtype=F64), -1)
    log_b = torch.log_softmax(torch.randn(3, 4, dtype=F64), -1)
    plan = log_sinkhorn(log_kernel, 300, log_a, log_b).exp()
    assert torch.allclose(plan.sum(-1), log_a.exp(), atol=1e-12)
    assert torch.allclose(plan.sum(-2), log_b.exp(), atol=1e-8)
