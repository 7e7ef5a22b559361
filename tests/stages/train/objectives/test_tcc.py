"""TCC (docs/method.md#tcc): reference values from the official code, the vectorised loss against the
official double loop, invariances and gradients."""
from __future__ import annotations

import math

import pytest
import torch

from tests.stages.train.objectives.reference import EN, F64, LENGTHS, STEPS, E, assert_rel, pairs
from vava.stages.train.objectives.tcc import TccConfig, TccLoss, similarity, tcc_loss

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
