"""VAVA's balanced-variant options (docs/method.md#balanced-variant): normalised cost, unit embeddings, partial
virtual frame, budget phi schedule, gradient-norm logging, unmatched_share."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from vava.core.errors import ConfigError
from vava.stages.train.objectives.base import PairBatch
from vava.stages.train.objectives.vava import (
    VavaConfig,
    VavaLoss,
    phi_at,
    phi_schedule,
    unmatched_share,
    vava_pair_terms,
)

F64 = torch.float64
BALANCED = {"cost": "normalised", "unit_embeddings": True, "virtual": "partial", "phi_schedule": "budget",
            "total_steps": 100}


def tiny_pair() -> tuple[np.ndarray, np.ndarray]:
    """N = 2, M = 3, d = 2."""
    return np.array([[0.3, -0.2], [0.9, 0.4]]), np.array([[0.2, -0.1], [0.5, 0.3], [1.1, 0.2]])


def numpy_align(x: np.ndarray, y: np.ndarray, phi: float, *, unit: bool, rho: float | None,
                lambda1: float = 1.0, lambda2: float = 0.1, zeta: float = 0.5, sigma: float = 2.0,
                virtual_distance: float = 5.0, updates: int = 21) -> tuple[float, np.ndarray]:
    """(L_VAVA, plan) of mode paper with the normalised cost, written from the formulas of docs/method.md in
    float64 numpy (plain-domain Sinkhorn). rho None: uniform marginals; else partial with fraction rho."""
    n, d = x.shape
    m = y.shape[0]
    if unit:
        x = x * math.sqrt(d) / np.linalg.norm(x, axis=1, keepdims=True)
        y = y * math.sqrt(d) / np.linalg.norm(y, axis=1, keepdims=True)
    cost = ((x[:, None, :] - y[None, :, :]) ** 2).sum(-1) / d
    cost_aug = np.full((n + 1, m + 1), zeta)
    cost_aug[1:, 1:] = cost
    i = np.arange(1, n + 2)[:, None]
    j = np.arange(1, m + 2)[None, :]
    centre = np.concatenate([[1], cost.argmin(1) + 2])[:, None]
    mid = math.sqrt((n + 1) ** -2 + (m + 1) ** -2)
    dc, do = np.abs(i / (n + 1) - j / (m + 1)), np.abs(j / (m + 1) - centre / (m + 1))

    def g(z: np.ndarray | float) -> np.ndarray:
        return np.exp(-np.square(z) / (2 * sigma ** 2)) / (sigma * math.sqrt(2 * math.pi))
    prior = phi * g(dc / mid) + (1 - phi) * g(do / mid)
    idm = lambda1 * (phi / (dc ** 2 + 1) + (1 - phi) / (do ** 2 + 1))
    virtual = (i == 1) ^ (j == 1)
    offset = 1.5 * 2 * virtual_distance / (n + m + 2)
    prior = np.where(virtual, g(offset / mid), prior)
    idm = np.where(virtual, lambda1 / (offset ** 2 + 1), idm)
    kernel = prior * np.exp((idm - cost_aug) / lambda2)
    if rho is None:
        a, b = np.full(n + 1, 1 / (n + 1)), np.full(m + 1, 1 / (m + 1))
    else:
        a = np.concatenate([[rho], np.full(n, 1 / n)]) / (1 + rho)
        b = np.concatenate([[rho], np.full(m, 1 / m)]) / (1 + rho)
    u = a.copy()
    for _ in range(updates):
        v = b / (kernel.T @ u)
        u = a / (kernel @ v)
    plan = u[:, None] * kernel * v[None, :]
    return float((plan * cost_aug).sum()), plan


# ---------------------------------------------------------------- against the independent implementation


@pytest.mark.parametrize("unit", [False, True])
@pytest.mark.parametrize("rho", [None, 0.3])
def test_normalised_cost_matches_numpy(unit: bool, rho: float | None) -> None:
    x, y = tiny_pair()
    config = VavaConfig(cost="normalised", unit_embeddings=unit, virtual="uniform" if rho is None else "partial",
                        background_fraction=0.3 if rho is None else rho, phi_schedule="budget", total_steps=10,
                        phi_end=0.4)
    phi = 0.999 + (0.4 - 0.999) * 0.6
    expected, plan = numpy_align(x, y, phi, unit=unit, rho=rho)
    terms = vava_pair_terms(torch.from_numpy(x), torch.from_numpy(y), 6, config)
    assert float(terms["align"]) == pytest.approx(expected, rel=1e-12)
    np.testing.assert_allclose(terms["plan"].numpy(), plan, rtol=1e-10, atol=0)
    assert float(terms["kernel_clamped"]) == 0  # the comparison holds only off the clamp


def test_normalised_cost_value_by_hand() -> None:
    """With lambda1 = 0 and a flat prior the plan is the entropic one; at lambda2 -> large it is the product of
    the marginals, so L_VAVA is the marginal-weighted mean of D~."""
    x, y = tiny_pair()
    config = VavaConfig(cost="normalised", lambda1=0.0, lambda2=1e6, sigma_prior=1e6, virtual="partial",
                        background_fraction=0.5)
    value = float(vava_pair_terms(torch.from_numpy(x), torch.from_numpy(y), 0, config)["align"])
    a = np.array([0.5, 0.5, 0.5]) / 1.5           # virtual 0.5, real frames 1/2 each
    b = np.array([0.5, 1 / 3, 1 / 3, 1 / 3]) / 1.5
    cost = ((x[:, None] - y[None]) ** 2).mean(-1)
    by_hand = 0.5 * (a[0] + (1 - a[0]) * b[0]) + a[1:] @ cost @ b[1:]
    assert value == pytest.approx(by_hand, rel=1e-5)


def test_normalised_cost_defaults() -> None:
    """align_weight None -> 1 and unscaled lambdas: the total is gamma*C + L_VAVA + inter_weight*L_inter."""
    x, y = (torch.from_numpy(v) for v in tiny_pair())
    terms = vava_pair_terms(x, y, 0, VavaConfig(cost="normalised"))
    by_parts = 0.5 * (terms["intra_x"] + terms["intra_y"]) + terms["align"] + 1e-4 * terms["inter"]
    assert float(terms["total"]) == pytest.approx(float(by_parts), rel=1e-14)
    expected, _ = numpy_align(x.numpy(), y.numpy(), 0.999, unit=False, rho=None)
    assert float(terms["align"]) == pytest.approx(expected, rel=1e-12)


def test_unit_embeddings_make_the_cost_scale_invariant() -> None:
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(6, 8, generator=g, dtype=F64), torch.randn(7, 8, generator=g, dtype=F64)
    config = VavaConfig(**BALANCED)
    base = vava_pair_terms(x, y, 30, config)
    scaled = vava_pair_terms(0.01 * x, 0.01 * y, 30, config)
    assert float(scaled["align"]) == pytest.approx(float(base["align"]), rel=1e-12)
    assert torch.allclose(scaled["plan"], base["plan"], rtol=1e-12, atol=0)
    raw = VavaConfig(**{**BALANCED, "unit_embeddings": False})  # raw embeddings: shrinking lowers the cost
    assert float(vava_pair_terms(0.1 * x, 0.1 * y, 30, raw)["align"]) < 0.2 * float(vava_pair_terms(x, y, 30, raw)["align"])


# ---------------------------------------------------------------- partial virtual frame


def test_partial_marginals() -> None:
    g = torch.Generator().manual_seed(1)
    x, y = torch.randn(8, 16, generator=g, dtype=F64), torch.randn(10, 16, generator=g, dtype=F64)
    terms = vava_pair_terms(x, y, 0, VavaConfig(**BALANCED, background_fraction=0.4))
    plan = terms["plan"]
    rows = torch.tensor([0.4] + [1 / 8] * 8, dtype=F64) / 1.4
    columns = torch.tensor([0.4] + [1 / 10] * 10, dtype=F64) / 1.4
    assert torch.allclose(plan.sum(1), rows, rtol=1e-14, atol=0)  # exact after the last (u) update
    assert float(plan.sum()) == pytest.approx(1.0, abs=1e-14)
    error = (plan.sum(0) - columns).abs().max()
    assert error < 1e-2
    assert float(terms["marginal_error"]) == pytest.approx(float(error), rel=1e-6)  # logged in float32


def background_pair() -> tuple[torch.Tensor, torch.Tensor, int]:
    """Y: 14 frames of a trajectory; X: the same frames with 4 background frames (about 30%) after frame 7."""
    t, k = (torch.arange(14, dtype=F64)[:, None], torch.arange(16, dtype=F64)[None, :])
    y = torch.sin(0.4 * t * (1 + k / 8) + 0.25 * k)
    background = torch.cos(1.3 * torch.arange(4, dtype=F64)[:, None] + 2.1 * k)
    return torch.cat([y[:7], background, y[7:]]), y, 7


def test_partial_virtual_frame_absorbs_a_background_block_uniform_cannot() -> None:
    x, y, start = background_pair()
    shares = {}
    for virtual in ("uniform", "partial"):
        config = VavaConfig(**{**BALANCED, "virtual": virtual})
        rows, _ = unmatched_share(vava_pair_terms(x, y, 0, config)["plan"])
        shares[virtual] = rows
    block = slice(start, start + 4)
    # uniform: the virtual column holds 1/M' of the mass, under the 4/18 of real rows that should go there
    assert float(shares["uniform"][block].mean()) < 0.5
    assert float(shares["partial"][block].min()) > 0.95
    for share in shares.values():
        assert float(torch.cat([share[:start], share[start + 4:]]).max()) < 1e-4  # procedure frames stay matched


# ---------------------------------------------------------------- unmatched_share


def test_unmatched_share_on_hand_made_plans() -> None:
    plan = torch.tensor([[0.10, 0.05, 0.00, 0.05],
                         [0.20, 0.20, 0.00, 0.00],
                         [0.00, 0.00, 0.30, 0.10]])
    rows, cols = unmatched_share(plan)
    assert rows.tolist() == pytest.approx([0.5, 0.0])
    assert cols.tolist() == pytest.approx([0.05 / 0.25, 0.0, 0.05 / 0.15])
    batch_rows, batch_cols = unmatched_share(torch.stack([plan, plan.flip(0).flip(1)]))
    assert torch.equal(batch_rows[0], rows) and torch.equal(batch_cols[0], cols)
    assert batch_rows.shape == (2, 2) and batch_cols.shape == (2, 3)


# ---------------------------------------------------------------- phi schedule


@pytest.mark.parametrize("step, phi", [(0, 0.999), (25, 0.999 - 0.499 / 4), (50, 0.7495), (99, 0.999 - 0.499 * 0.99),
                                       (100, 0.5), (250, 0.5)])
def test_budget_phi(step: int, phi: float) -> None:
    assert phi_at(step, VavaConfig(phi_schedule="budget", total_steps=100)) == pytest.approx(phi, abs=1e-15)


def test_budget_phi_end_and_official_schedule() -> None:
    assert phi_at(10, VavaConfig(phi_schedule="budget", total_steps=10, phi_end=0.001)) == pytest.approx(0.001)
    for step in (0, 200, 150_000):
        assert phi_at(step, VavaConfig()) == phi_schedule(step)
    with pytest.raises(ValueError, match="step must be >= 0"):
        phi_at(-1, VavaConfig(phi_schedule="budget", total_steps=10))


def test_budget_phi_reaches_the_loss() -> None:
    embeddings = torch.randn(1, 2, 6, 4, generator=torch.Generator().manual_seed(2), dtype=F64)
    config = VavaConfig(phi_schedule="budget", total_steps=4, phi_end=0.2)
    _, components = VavaLoss(config)(PairBatch(embeddings, None, None, None, 2))
    assert float(components["phi"]) == pytest.approx(0.5995)
    late = vava_pair_terms(embeddings[0, 0], embeddings[0, 1], 9, config)["plan"]
    at_end = vava_pair_terms(embeddings[0, 0], embeddings[0, 1], 4, config)["plan"]
    early = vava_pair_terms(embeddings[0, 0], embeddings[0, 1], 0, config)["plan"]
    assert torch.equal(late, at_end) and not torch.allclose(early, at_end)


# ---------------------------------------------------------------- gradients


def test_gradcheck_balanced_total_float64() -> None:
    g = torch.Generator().manual_seed(3)
    x = (0.5 * torch.randn(4, 3, generator=g, dtype=F64)).requires_grad_()
    y = (0.5 * torch.randn(5, 3, generator=g, dtype=F64)).requires_grad_()
    config = VavaConfig(**BALANCED, window=1, inter_weight=0.1, align_weight=0.2)
    assert torch.autograd.gradcheck(lambda a, b: vava_pair_terms(a, b, 40, config)["total"], (x, y))


@pytest.mark.parametrize("options", [BALANCED, {}, {**BALANCED, "both_orders": True}], ids=["balanced", "official",
                                                                                          "both_orders"])
def test_grad_norm_components_equal_separate_autograd_norms(options: dict) -> None:
    embeddings = torch.randn(2, 2, 6, 4, generator=torch.Generator().manual_seed(4), dtype=F64)
    config = VavaConfig(**options, window=2, log_grad_norms=True)
    loss_fn = VavaLoss(config)
    leaf = embeddings.clone().requires_grad_()
    loss, components = loss_fn(PairBatch(leaf, None, None, None, 3))
    weight = 1.0 if options else 1 / 36

    def norm(part) -> float:
        e = embeddings.clone().requires_grad_()
        orders = [(e[:, 0], e[:, 1])] + ([(e[:, 1], e[:, 0])] if config.both_orders else [])
        value = sum(part(vava_pair_terms(a, b, 3, config)).mean() for a, b in orders) / len(orders)
        (grad,) = torch.autograd.grad(value, [e])
        return float(grad.norm())
    intra = norm(lambda t: 0.5 * (t["intra_x"] + t["intra_y"]))
    align = norm(lambda t: weight * t["align"])
    assert float(components["grad_intra"]) == pytest.approx(intra, rel=1e-6)  # logged in float32
    assert float(components["grad_align"]) == pytest.approx(align, rel=1e-6)  # logged in float32
    assert float(components["grad_inter"]) == pytest.approx(norm(lambda t: 1e-4 * t["inter"]), rel=1e-6)  # logged in float32
    assert float(components["grad_ratio"]) == pytest.approx(align / intra, rel=1e-6)  # logged in float32
    loss.backward()  # the graph survives the extra gradients
    assert leaf.grad is not None and float(loss.detach()) == float(VavaLoss(VavaConfig(**options, window=2))(
        PairBatch(embeddings, None, None, None, 3))[0])


def test_grad_norms_only_when_the_embeddings_require_grad() -> None:
    embeddings = torch.randn(1, 2, 5, 4, generator=torch.Generator().manual_seed(5))
    _, components = VavaLoss(VavaConfig(log_grad_norms=True))(PairBatch(embeddings, None, None, None, 0))
    assert not any(name.startswith("grad_") for name in components)
    leaf = embeddings.clone().requires_grad_()
    config = VavaConfig(log_grad_norms=True, mode="reference", port_inter_bug=True)
    _, components = VavaLoss(config)(PairBatch(leaf, None, None, None, 0))
    assert float(components["grad_inter"]) == 0.0  # the port's inter term is detached
    assert float(components["grad_intra"]) > 0 and float(components["grad_align"]) > 0


# ---------------------------------------------------------------- config


@pytest.mark.parametrize("options, key", [
    ({"cost": "mean"}, "cost"), ({"virtual": "full"}, "virtual"), ({"background_fraction": 1.0}, "background_fraction"),
    ({"background_fraction": -0.1}, "background_fraction"), ({"phi_schedule": "linear"}, "phi_schedule"),
    ({"phi_end": 0.0}, "phi_end"), ({"phi_end": 1.0}, "phi_end"), ({"total_steps": 0}, "total_steps"),
    ({"unit_embeddings": "yes"}, "unit_embeddings"), ({"log_grad_norms": 1}, "log_grad_norms"),
])
def test_config_rejects_bad_values(options: dict, key: str) -> None:
    with pytest.raises(ConfigError, match=f"^{key} must be"):
        VavaConfig(**options)


def test_budget_needs_total_steps() -> None:
    with pytest.raises(ConfigError, match=r"^total_steps must be set with phi_schedule 'budget' \(`vava train` fills "
                                          r"it from steps\), got None$"):
        VavaConfig(phi_schedule="budget")


def test_new_defaults_are_the_official_behaviour() -> None:
    config = VavaConfig()
    assert (config.cost, config.unit_embeddings, config.virtual, config.background_fraction, config.phi_schedule,
            config.phi_end, config.total_steps, config.log_grad_norms) == (
        "official", False, "uniform", 0.3, "official", 0.5, None, False)
