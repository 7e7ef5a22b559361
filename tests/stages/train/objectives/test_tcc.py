"""Baseline objectives (TCC, LAV, GTA, TCN, SaL, supervised) and soft-DTW: the reference values of
docs/method.md#baseline-reference-values (from running the official code), their invariants, config
validation, and a smoke test of every registered objective."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from vava.core.errors import VavaError
from vava.stages.train.objectives import OBJECTIVES, build_config, build_objective
from vava.stages.train.objectives.alignment import pairwise_sq_dists, smooth_min, soft_dtw, soft_dtw_divergence
from vava.stages.train.objectives.base import PairBatch
from vava.stages.train.objectives.gta import FLT_MAX, GtaConfig, GtaLoss, contrastive_cost, cycle_matrix, gta_loss
from vava.stages.train.objectives.lav import LavConfig, LavLoss, contrastive_idm, idm_negatives, lav_pair_terms
from vava.stages.train.objectives.sal import SalLoss, SalSample, sample_triplets, triplet_logits
from vava.stages.train.objectives.supervised import SupervisedConfig, SupervisedLoss
from vava.stages.train.objectives.tcc import TccConfig, TccLoss, similarity, tcc_loss
from vava.stages.train.objectives.tcn import TcnConfig, TcnLoss, npairs_loss, triplet_semihard_loss

F64 = torch.float64
REL = 1e-5  # values are given to 6 significant digits (docs/method.md#baseline-reference-values)

STEPS = torch.tensor([
    [4, 5, 10, 11, 14, 16, 18, 20, 21, 25, 27, 28, 30, 31, 33, 36, 38, 43, 45, 46],
    [0, 4, 8, 10, 11, 15, 20, 22, 25, 26, 31, 38, 40, 43, 45, 47, 49, 56, 57, 58],
    [0, 1, 3, 4, 6, 8, 10, 12, 13, 15, 17, 19, 20, 25, 27, 32, 33, 35, 36, 39],
    [1, 3, 5, 6, 10, 14, 15, 18, 20, 23, 24, 28, 29, 34, 39, 44, 47, 49, 71, 75],
])
LENGTHS = torch.tensor([50, 64, 40, 80])


def _reference() -> tuple[torch.Tensor, torch.Tensor]:
    state = torch.get_rng_state()
    torch.manual_seed(0)
    e = torch.randn(4, 20, 128)
    torch.set_rng_state(state)
    return e, F.normalize(e, dim=-1)


E, EN = _reference()


def assert_rel(value: torch.Tensor | float, expected: float, rel: float = REL) -> None:
    assert float(torch.as_tensor(value).detach()) == pytest.approx(expected, rel=rel)


def pairs(z: torch.Tensor, steps: torch.Tensor = STEPS, lengths: torch.Tensor = LENGTHS,
          labels: torch.Tensor | None = None) -> PairBatch:
    """Videos [2P, T, D] as a PairBatch of P pairs (videos 0,1 / 2,3 / ...)."""
    count, frames = z.shape[0] // 2, z.shape[1]
    labels = torch.full((count, 2, frames), -1) if labels is None else labels.view(count, 2, frames)
    return PairBatch(z.view(count, 2, frames, -1), steps[:2 * count].view(count, 2, frames),
                     lengths[:2 * count].view(count, 2), labels, 0)


def test_reference_inputs() -> None:
    assert E[0, 0, :4].tolist() == pytest.approx([-1.12584, -1.15236, -0.250579, -0.433879], abs=1e-5)
    assert E.double().sum().item() == pytest.approx(-100.193578, abs=1e-5)
    assert E.double().abs().sum().item() == pytest.approx(8142.34954, abs=1e-4)
    g = torch.Generator().manual_seed(1)
    drawn = [torch.sort(torch.randperm(int(n), generator=g)[:20]).values for n in LENGTHS]
    assert torch.equal(torch.stack(drawn), STEPS)


# ---------------------------------------------------------------- TCC (docs/method.md#tcc)

B2 = (E[:2], STEPS[:2], LENGTHS[:2])
TCC_CASES = [
    ({}, B2, 0.827227),
    ({}, (E, STEPS, LENGTHS), 0.700655),
    ({"similarity": "cosine"}, B2, 0.892660),
    ({"loss_type": "regression_mse"}, B2, 0.0602791),
    ({"loss_type": "regression_huber"}, B2, 0.0154086),
    ({"loss_type": "classification"}, B2, 2.53050),
    ({"loss_type": "classification", "label_smoothing": 0.0}, B2, 2.32808),
    ({"loss_type": "classification", "similarity": "cosine"}, B2, 2.41858),
    ({}, (E[:2], None, None), 0.861590),
    ({}, (EN[:2], STEPS[:2], LENGTHS[:2]), 0.997267),
]


@pytest.mark.parametrize("options, inputs, expected", TCC_CASES)
def test_tcc_reference_values(options: dict, inputs: tuple, expected: float) -> None:
    assert_rel(tcc_loss(*inputs, TccConfig(**options))[0], expected)


def test_tcc_objective_groups() -> None:
    per_pair = TccLoss()(pairs(E))[0]
    first = tcc_loss(E[:2], STEPS[:2], LENGTHS[:2])[0]
    second = tcc_loss(E[2:], STEPS[2:], LENGTHS[2:])[0]
    assert_rel(per_pair, float(first + second) / 2)
    assert_rel(TccLoss(TccConfig(grouping="batch"))(pairs(E))[0], 0.700655)
    assert_rel(TccLoss()(pairs(E[:2]))[0], 0.827227)  # also LAV's symmetric losses.TCC on (E0, E1)


def naive_tcc(z: torch.Tensor, steps: torch.Tensor, lengths: torch.Tensor, config: TccConfig) -> torch.Tensor:
    """The official double loop over ordered pairs, row by row."""
    rows = []
    dim = z.shape[-1]
    for i in range(len(z)):
        times = steps[i].to(z.dtype) / lengths[i]
        for j in range(len(z)):
            if i == j:
                continue
            for k in range(z.shape[1]):
                def sim(u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
                    if config.similarity == "l2":
                        return -((u - v) ** 2).sum(-1) / (dim * config.temperature)
                    return (u * v).sum(-1) / (dim * config.temperature)
                nearest = (torch.softmax(sim(z[i, k], z[j]), 0)[:, None] * z[j]).sum(0)
                logits = sim(nearest, z[i])
                beta = torch.softmax(logits, 0)
                mu = (beta * times).sum()
                var = (beta * (times - mu) ** 2).sum()
                err = (times[k] - mu) ** 2
                if config.loss_type == "regression_mse_var":
                    rows.append(err / var + config.variance_lambda * torch.log(var))
                elif config.loss_type == "regression_mse":
                    rows.append(err)
                else:
                    target = torch.full((z.shape[1],), config.label_smoothing / z.shape[1], dtype=z.dtype)
                    target[k] += 1 - config.label_smoothing
                    rows.append(-(target * torch.log_softmax(logits, 0)).sum())
    return torch.stack(rows).mean()


@pytest.mark.parametrize("options", [{}, {"similarity": "cosine"}, {"loss_type": "regression_mse"},
                                     {"loss_type": "classification"}])
def test_tcc_vectorised_equals_double_loop(options: dict) -> None:
    z = (E[:3, :8, :16] * 0.5).double()
    config = TccConfig(**options)
    expected = float(naive_tcc(z, STEPS[:3, :8], LENGTHS[:3], config))
    assert_rel(tcc_loss(z, STEPS[:3, :8], LENGTHS[:3], config)[0], expected, 1e-6)


def test_tcc_identical_sequences() -> None:
    z, steps, lengths = torch.stack([E[0], E[0]]), torch.stack([STEPS[0]] * 2), torch.tensor([50, 50])
    assert float(tcc_loss(z, steps, lengths, TccConfig(loss_type="regression_mse"))[0]) < 1e-10
    classification = float(tcc_loss(z, steps, lengths, TccConfig(loss_type="classification", label_smoothing=0.0))[0])
    assert 0 <= classification < 2e-6  # reference 6.37769e-07 (float32 rounding noise)
    loss, parts = tcc_loss(z, steps, lengths, TccConfig())
    assert_rel(loss, -0.0170504, 1e-4)
    assert float(loss) <= 0
    assert_rel(loss, 0.001 * float(parts["log_variance"]), 1e-3)
    assert_rel(tcc_loss(z.double(), steps, lengths, TccConfig())[0], -0.0170506, 1e-5)  # re-impl float64


def test_tcc_invariances() -> None:
    z, steps, lengths = E.double(), STEPS, LENGTHS
    for options in ({}, {"loss_type": "classification"}, {"similarity": "cosine"}):
        config = TccConfig(**options)
        base = tcc_loss(z, steps, lengths, config)[0]
        order = torch.tensor([2, 0, 3, 1])
        assert_rel(tcc_loss(z[order], steps[order], lengths[order], config)[0], float(base), 1e-10)
        assert_rel(tcc_loss(z, steps * 3, lengths * 3, config)[0], float(base), 1e-10)
    for options in ({}, {"loss_type": "regression_mse"}, {"loss_type": "regression_huber"}):
        config = TccConfig(**options)
        shifted = z + torch.linspace(-3, 3, 128, dtype=F64)
        assert_rel(tcc_loss(shifted, steps, lengths, config)[0], float(tcc_loss(z, steps, lengths, config)[0]), 1e-8)


@pytest.mark.parametrize("options", [{}, {"loss_type": "classification", "similarity": "cosine"},
                                     {"loss_type": "regression_huber"}, {"stochastic": True}])
def test_tcc_gradcheck(options: dict) -> None:
    z = torch.randn(2, 4, 3, dtype=F64, generator=torch.Generator().manual_seed(3)).requires_grad_()
    steps, lengths = torch.tensor([[0, 2, 5, 7], [1, 3, 4, 9]]), torch.tensor([10, 12])
    config = TccConfig(temperature=0.5, **options)

    def loss(x: torch.Tensor) -> torch.Tensor:
        torch.manual_seed(0)  # the same random cycles on every call
        return tcc_loss(x, steps, lengths, config)[0]
    assert torch.autograd.gradcheck(loss, (z,))


def test_tcc_stochastic_cycles_are_random() -> None:
    from vava.stages.train.objectives.tcc import random_cycles
    torch.manual_seed(0)
    cycles, start = random_cycles(1, 4, 20, TccConfig(stochastic=True), torch.device("cpu"))
    assert cycles.shape == (1, 80, 3) and start.shape == (1, 80)
    assert torch.equal(cycles[..., 0], cycles[..., 2]) and bool((cycles[..., 0] != cycles[..., 1]).all())
    assert len({tuple(c) for c in cycles[0].tolist()}) > 6  # not the official all-(0, 1, 0) degenerate set
    torch.manual_seed(0)
    loss = tcc_loss(E, STEPS, LENGTHS, TccConfig(stochastic=True))[0]
    assert math.isfinite(float(loss))
    with pytest.raises(ValueError, match="cycle_length"):
        tcc_loss(E[:2], STEPS[:2], LENGTHS[:2], TccConfig(stochastic=True, cycle_length=3))


def test_tcc_cosine_is_a_raw_dot_product() -> None:
    x, y = E[0, :3], E[1, :4]
    assert torch.allclose(similarity(x, y, "cosine", 0.1), x @ y.T / 12.8)


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


# ---------------------------------------------------------------- LAV (docs/method.md#lav)

PAIR_STEPS, PAIR_LENGTHS = STEPS[None, :2], LENGTHS[None, :2]
OFFICIAL = LavConfig(window_test="float32")


def test_lav_reference_values_official_window() -> None:
    a = EN[0:1].clone().requires_grad_()
    terms = lav_pair_terms(a, EN[1:2], PAIR_STEPS, PAIR_LENGTHS, OFFICIAL)
    terms["lav"].sum().backward()
    assert_rel(terms["idm_a"], 312.450)
    assert_rel(terms["idm_b"], 219.205)
    assert_rel(terms["sdtw"], 39.7915)
    assert_rel(terms["lav"], 15.2810)
    assert_rel(a.grad.norm(), 2.81680, 1e-4)
    batch = pairs(EN)
    assert_rel(LavLoss(OFFICIAL)(batch)[0], 15.6933)
    assert_rel(lav_pair_terms(EN[[0, 2]], EN[[1, 3]], STEPS.view(2, 2, 20), LENGTHS.view(2, 2), OFFICIAL)["lav"].mean(),
               15.6933)


def test_lav_reference_reimplementation_and_integer_window() -> None:
    """The float64 re-implementation values (311.509, 15.2574, 2.84190, docs/method.md#baseline-reference-values)
    come from comparing float64 normalised times with sigma / L (it still misclassifies 4 of the pairs
    exactly 10 frames apart); the exact integer test gives I(a) = 320.041."""
    a64, b64 = EN[0:1].double().requires_grad_(), EN[1:2].double()
    times = STEPS[:2].double() / LENGTHS[:2, None]
    negative = (times[:, :, None] - times[:, None, :]).abs() > 10 / LENGTHS[:2, None, None].double()
    idm_a = contrastive_idm(a64, times[0:1], negative[0:1], 2.0)
    idm_b = contrastive_idm(b64, times[1:2], negative[1:2], 2.0)
    total = (soft_dtw(pairwise_sq_dists(a64, b64), 0.1) + 0.5 * (idm_a + idm_b)) / 20
    total.sum().backward()
    assert_rel(idm_a, 311.509)
    assert_rel(total, 15.2574)
    assert_rel(a64.grad.norm(), 2.84190)
    integer = lav_pair_terms(EN[0:1], EN[1:2], PAIR_STEPS, PAIR_LENGTHS, LavConfig())
    assert_rel(integer["idm_a"], 320.041)
    assert_rel(integer["idm_b"], 219.205)
    exact = idm_negatives(PAIR_STEPS, PAIR_LENGTHS, 10)
    official = idm_negatives(PAIR_STEPS, PAIR_LENGTHS, 10, "float32")
    gap = (STEPS[0, :, None] - STEPS[0, None, :]).abs()
    assert int((gap == 10).sum()) == 18 and int((official[0, 0] & (gap == 10)).sum()) == 4
    assert not bool((exact[0, 0] & (gap == 10)).any())


def test_lav_idm_limits() -> None:
    x, times = EN[0:1].double(), STEPS[0:1].double() / 50
    everything_close = idm_negatives(STEPS[0:1], LENGTHS[0:1], 50)
    assert not bool(everything_close.any())
    assert_rel(contrastive_idm(x, times, everything_close, 2.0), float(pairwise_sq_dists(x, x).sum()), 1e-12)
    same = x[:, :1].expand_as(x)
    negative = idm_negatives(STEPS[0:1], LENGTHS[0:1], 10)
    weight = 1 + (times[..., :, None] - times[..., None, :]) ** 2
    assert_rel(contrastive_idm(same, times, negative, 2.0), float(2.0 * (weight * negative).sum()), 1e-12)


def test_lav_objective_options() -> None:
    batch = pairs(E)  # raw: the objective normalises
    assert_rel(LavLoss(OFFICIAL)(batch)[0], 15.6933)
    assert_rel(LavLoss(LavConfig(window_test="float32", frames_divisor=40))(batch)[0], 15.6933 / 2)
    divergence = LavLoss(LavConfig(gamma=1.0, sdtw_normalize=True))(batch)[1]["sdtw"]
    plain = LavLoss(LavConfig(gamma=1.0))(batch)[1]["sdtw"]
    assert float(divergence) > float(plain) + 1  # sdtw(x, x) < 0 is subtracted


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


# ---------------------------------------------------------------- SaL and supervised (docs/method.md#sal, #supervised)


def test_sal_reference_value() -> None:
    triplets = torch.tensor([[12, 6, 18], [12, 16, 17], [9, 11, 14], [5, 3, 10], [9, 19, 14], [8, 18, 14],
                             [3, 2, 12], [4, 6, 8]])
    labels = torch.tensor([1, 0, 0, 1, 1, 1, 1, 0])
    torch.manual_seed(0)
    objective = SalLoss()
    logits = triplet_logits(objective.head, E[:2], SalSample(torch.arange(8) % 2, triplets, labels))
    assert_rel(F.cross_entropy(logits, labels), 0.723942)
    assert sum(p.numel() for p in objective.parameters()) == 384 * 128 + 128 + 128 * 64 + 64 + 64 * 2 + 2


def test_sal_sampler_invariants() -> None:
    g = torch.Generator().manual_seed(11)
    directions = set()
    for videos, frames in ((2, 20), (8, 20), (3, 5), (4, 40)):
        for _ in range(25):
            sample = sample_triplets(videos, frames, 8, 0.75, g)
            rows = videos * 8
            assert int(sample.labels.sum()) == int(0.75 * rows)
            assert torch.equal(sample.video, torch.arange(rows) % videos)
            first, middle, last = sample.triplets.unbind(-1)
            assert bool((sample.triplets >= 0).all()) and bool((sample.triplets < frames).all())
            ordered = sample.labels == 0
            ascending = (first < middle) & (middle < last)
            descending = (first > middle) & (middle > last)
            assert bool(ascending[ordered].all()) or bool(descending[ordered].all())
            direction = bool((first < last).all())
            assert bool(((first < last) == direction).all())  # one coin for the batch
            directions.add(direction)
            low, high = torch.minimum(first, last), torch.maximum(first, last)
            shuffled = ~ordered
            assert bool(((middle[shuffled] < low[shuffled]) | (middle[shuffled] > high[shuffled])).all())
    assert directions == {True, False}
    with pytest.raises(ValueError, match="at least 5"):
        sample_triplets(2, 4, 8, 0.75)


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


# ---------------------------------------------------------------- configs and registry

BAD_OPTIONS = [
    ("tcc", "loss_type", "regression"), ("tcc", "similarity", "dot"), ("tcc", "temperature", 0.0),
    ("tcc", "variance_lambda", -1.0), ("tcc", "label_smoothing", 1.5), ("tcc", "cycle_length", 1),
    ("tcc", "grouping", "all"), ("tcc", "normalize_indices", 1), ("tcc", "huber_delta", math.nan),
    ("lav", "gamma", 0.0), ("lav", "sigma", 2.5), ("lav", "alpha", -0.5), ("lav", "window_test", "float64"),
    ("lav", "frames_divisor", 0), ("lav", "l2_normalize", "yes"),
    ("gta", "relaxation", "dtw_prob"), ("gta", "gamma_s", -0.1), ("gta", "gamma_f", math.inf),
    ("gta", "grouping", "star"), ("gta", "sdtw_weight", -1.0), ("gta", "label_smoothing", 2.0),
    ("tcn", "loss_type", "triplets"), ("tcn", "positive_window", 0), ("tcn", "neg_radius", 3),
    ("tcn", "reg_lambda", -1.0), ("tcn", "l2_normalize", 1),
    ("sal", "num_samples", 0), ("sal", "shuffle_fraction", 1.2), ("sal", "embedding_dim", 0),
    ("supervised", "num_classes", 1), ("supervised", "embedding_dim", 2.0), ("supervised", "label_smoothing", -0.1),
]


@pytest.mark.parametrize("name, key, value", BAD_OPTIONS)
def test_config_validation(name: str, key: str, value: object) -> None:
    config_type = OBJECTIVES[name].config_class
    with pytest.raises(ValueError, match=key):
        config_type(**{key: value})
    with pytest.raises(VavaError, match=key):
        build_config(name, {key: value})


def test_registry() -> None:
    assert {"vava", "tcc", "lav", "gta", "tcn", "sal", "supervised"} <= set(OBJECTIVES)
    with pytest.raises(VavaError, match="unknown option"):
        build_config("tcc", {"tau": 0.1})
    assert [name for name, objective in OBJECTIVES.items() if objective.uses_labels] == ["supervised"]


SMOKE = {"tcn_triplet": ("tcn", {"loss_type": "triplet"}), "tcc_stochastic": ("tcc", {"stochastic": True}),
         "gta_batch": ("gta", {"grouping": "batch"}), "tcc_batch": ("tcc", {"grouping": "batch"})}


@pytest.mark.parametrize("case", sorted(OBJECTIVES) + sorted(SMOKE))
def test_smoke(case: str) -> None:
    name, options = SMOKE.get(case, (case, {}))
    fields = {f for f in OBJECTIVES[name].config_class.__dataclass_fields__}
    options = {**options, **({"embedding_dim": 16} if "embedding_dim" in fields else {})}
    objective = build_objective(name, options)
    g = torch.Generator().manual_seed(12)
    embeddings = torch.randn(2, 2, 8, 16, generator=g).requires_grad_()
    lengths = torch.tensor([[30, 25], [40, 12]])
    steps = torch.stack([torch.stack([torch.sort(torch.randperm(int(n), generator=g)[:8]).values for n in row])
                         for row in lengths])
    labels = torch.randint(-1, 4, (2, 2, 8), generator=g)
    torch.manual_seed(0)
    loss, components = objective(PairBatch(embeddings, steps, lengths, labels, 100))
    assert loss.shape == () and math.isfinite(float(loss.detach()))
    assert all(v.shape == () and not v.requires_grad for v in components.values())
    loss.backward()
    assert bool(torch.isfinite(embeddings.grad).all()) and float(embeddings.grad.abs().sum()) > 0
    for parameter in objective.parameters():
        assert parameter.grad is not None and bool(torch.isfinite(parameter.grad).all())
