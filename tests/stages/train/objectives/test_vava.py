"""VAVA loss: the reference values of docs/method.md#reference-values, gradients, plan invariants, priors,
config."""
from __future__ import annotations

import pytest
import torch

from tests.stages.train.objectives.reference import assert_rel
from vava.stages.train.objectives.alignment import pairwise_sq_dists
from vava.stages.train.objectives.base import PairBatch
from vava.stages.train.objectives.vava import VavaConfig, VavaLoss, phi_schedule, prior_and_idm, vava_pair_terms

F64 = torch.float64
PT = VavaConfig(mode="reference", port_inter_bug=True)
R = VavaConfig(mode="reference")
PM = VavaConfig(mode="paper")
CONFIGS = {"PT": PT, "R": R, "Pm": PM}
REL = 1e-5      # L_VAVA and C terms (docs/method.md#reference-values)
REL_SEL = 2e-5  # selection-derived terms (d+, d-, L_inter, L_all) may move in the 6th digit


def grid(*sizes: int) -> list[torch.Tensor]:
    """Broadcastable float64 index grids 0..size-1, one axis each."""
    axes = []
    for axis, size in enumerate(sizes):
        shape = [1] * len(sizes)
        shape[axis] = size
        axes.append(torch.arange(size, dtype=F64).reshape(shape))
    return axes


def case_a() -> tuple[torch.Tensor, torch.Tensor]:
    i, k = grid(5, 4)
    j, _ = grid(6, 4)
    return torch.sin(0.7 * i + 0.3 * k + 0.1).float(), torch.cos(0.5 * j - 0.2 * k).float()


def case_b() -> tuple[torch.Tensor, torch.Tensor]:
    t, k = grid(8, 16)
    return (torch.sin(0.4 * t * (1 + k / 8) + 0.25 * k).float(),
            torch.sin(0.35 * t * (1 + k / 8) + 0.25 * k + 0.3).float())


def case_c() -> torch.Tensor:
    b, v, t, k = grid(2, 2, 20, 128)
    return (0.5 * torch.sin(0.13 * (t + 1) * ((k % 7) + 1) + 0.9 * b + 1.7 * v + 0.01 * k)).float()


def seeded(seed: int, scale: float) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = scale * torch.randn(20, 128, generator=g)
    return x, scale * torch.randn(20, 128, generator=g)


def trajectory(n: int, d: int = 16) -> torch.Tensor:
    t, k = grid(n, d)
    return torch.sin(0.4 * t * (1 + k / 8) + 0.25 * k)


# ---------------------------------------------------------------- reference values (docs/method.md#reference-values)


@pytest.mark.parametrize("dtype", [torch.float32, F64])
@pytest.mark.parametrize("name, expected", [("PT", 0.0216579), ("R", 0.0216579), ("Pm", 0.0216573)])
def test_case_a_alignment(name: str, expected: float, dtype: torch.dtype) -> None:
    x, y = case_a()
    assert_rel(vava_pair_terms(x.to(dtype), y.to(dtype), 0, CONFIGS[name])["align"], expected)


CASE_B = {  # align, d+, d-, L_inter, L_all
    "PT": (0.0102388, 0.575136, 6.44044, 2.77285, 0.104221),
    "R": (0.0102388, 0.575136, 6.44044, 0.00283214, 0.103944),
    "Pm": (0.0102393, 0.123609, 6.23193, 0.00222181, 0.103944),
}


@pytest.mark.parametrize("dtype", [torch.float32, F64])
@pytest.mark.parametrize("name", CASE_B)
def test_case_b_all_terms(name: str, dtype: torch.dtype) -> None:
    x, y = case_b()
    terms = vava_pair_terms(x.to(dtype), y.to(dtype), 1000, CONFIGS[name])
    align, d_pos, d_neg, inter, total = CASE_B[name]
    assert_rel(terms["align"], align)
    assert_rel(terms["intra_x"], 0.111060)
    assert_rel(terms["intra_y"], 0.0965071)
    for key, expected in (("d_pos", d_pos), ("d_neg", d_neg), ("inter", inter), ("total", total)):
        assert_rel(terms[key], expected, REL_SEL)


CASE_C = {  # per pair: align, d+, d-, L_inter, L_all; then the batch loss
    "PT": ([(0.0427040, 0.396168, 1.09010, 0.861759, 0.0969618),
            (0.0371878, 0.398938, 1.04186, 0.850285, 0.0966885)], 0.0968251),
    "R": ([(0.0427040, 0.396168, 1.09010, 0.405204, 0.0969161),
           (0.0371878, 0.398938, 1.04186, 0.422489, 0.0966457)], 0.0967809),
    "Pm": ([(0.0426690, 0.396168, 0.961900, 0.449766, 0.0969205),
            (0.0370190, 0.400203, 0.990283, 0.441014, 0.0966472)], 0.0967838),
}
CASE_C_INTRA = [(0.0956378, 0.0978998), (0.0960637, 0.0969573)]


@pytest.mark.parametrize("name", CASE_C)
def test_case_c_batch(name: str) -> None:
    embeddings = case_c()
    terms = vava_pair_terms(embeddings[:, 0], embeddings[:, 1], 150000, CONFIGS[name])
    pairs, batch_loss = CASE_C[name]
    for b, (align, d_pos, d_neg, inter, total) in enumerate(pairs):
        assert_rel(terms["align"][b], align)
        assert_rel(terms["intra_x"][b], CASE_C_INTRA[b][0])
        assert_rel(terms["intra_y"][b], CASE_C_INTRA[b][1])
        for key, expected in (("d_pos", d_pos), ("d_neg", d_neg), ("inter", inter), ("total", total)):
            assert_rel(terms[key][b], expected, REL_SEL)
    loss, components = VavaLoss(CONFIGS[name])(PairBatch(embeddings, None, None, None, 150000))
    assert_rel(loss, batch_loss, REL_SEL)
    assert_rel(components["phi"], 0.678960)


CASE_D = {  # align, d+, d-, L_inter, L_all
    "PT": (0.00547821, 0.0835782, 0.0797768, 0.134751, 0.100799),
    "R": (0.00547821, 0.0835782, 0.0797768, 0.695050, 0.100855),
    "Pm": (0.00547819, 0.0781370, 0.0800329, 0.692200, 0.100855),
}


@pytest.mark.parametrize("name", CASE_D)
def test_case_d_seeded(name: str) -> None:
    x, y = seeded(0, 0.1)
    terms = vava_pair_terms(x, y, 0, CONFIGS[name])
    align, d_pos, d_neg, inter, total = CASE_D[name]
    assert_rel(terms["align"], align)
    assert_rel(terms["intra_x"], 0.100842)
    assert_rel(terms["intra_y"], 0.100701)
    for key, expected in (("d_pos", d_pos), ("d_neg", d_neg), ("inter", inter), ("total", total)):
        assert_rel(terms[key], expected, REL_SEL)


def test_case_b_gradient_norms_match_the_port() -> None:
    x, y = (v.double().requires_grad_() for v in case_b())
    grad_x, grad_y = torch.autograd.grad(vava_pair_terms(x, y, 1000, PT)["total"], [x, y])
    assert_rel(grad_x.norm(), 0.0158552)
    assert_rel(grad_y.norm(), 0.0140049)
    x_r = x.detach().clone().requires_grad_()
    (grad_r,) = torch.autograd.grad(vava_pair_terms(x_r, y, 1000, R)["total"], [x_r])
    assert 0 < (grad_r - grad_x).norm() < 1e-5  # the TF inter term adds a small, non-zero gradient


def test_case_d_gradient_norms_per_term() -> None:
    x, y = seeded(0, 0.1)
    x = x.double().requires_grad_()
    terms = vava_pair_terms(x, y.double(), 0, R)
    (grad_align,) = torch.autograd.grad(terms["align"] / 400, [x], retain_graph=True)
    (grad_intra,) = torch.autograd.grad(0.5 * terms["intra_x"], [x])
    assert_rel(grad_align.norm(), 2.90e-6, 5e-3)
    assert_rel(grad_intra.norm(), 4.34e-4, 5e-3)


def test_case_b_selection_sources() -> None:
    x, y = (v.double() for v in case_b())
    terms = vava_pair_terms(x, y, 1000, R)
    dist = pairwise_sq_dists(x, y)
    assert terms["plan"][1:, 1:].argmax(1).tolist() == list(range(8)) == dist.argmin(1).tolist()
    assert (terms["kernel"][1:, 1:] * dist).argmax(1).tolist() == [0, 0, 1, 4, 5, 6, 6, 7]


@pytest.mark.parametrize("dtype", [torch.float32, F64])
def test_saturation_with_and_without_clamp(dtype: torch.dtype) -> None:
    x, y = (v.to(dtype) for v in seeded(1, 3.0))
    with torch.no_grad():
        clamped = vava_pair_terms(x, y, 0, R)
        unclamped = vava_pair_terms(x, y, 0, VavaConfig(mode="reference", clamp_log_kernel=False))
        converged = vava_pair_terms(x, y, 0, VavaConfig(mode="reference", clamp_log_kernel=False,
                                                        sinkhorn_iters=1999))
    assert_rel(clamped["align"], 4.83682)
    assert float(clamped["kernel_clamped"]) == pytest.approx(400 / 441)
    assert float(clamped["marginal_error"]) < 1e-6
    assert_rel(unclamped["align"], 0.00113379)
    assert float(unclamped["marginal_error"]) == pytest.approx(19 / 21, rel=1e-4)
    assert_rel(converged["align"], 4.09421, 1e-5 if dtype == F64 else 1e-4)


@pytest.mark.parametrize("scale, expected", [(1.0, 0.476906), (10.0, 53.7414)])
def test_alignment_at_other_scales(scale: float, expected: float) -> None:
    x, y = seeded(1, scale)
    assert_rel(vava_pair_terms(x, y, 0, R)["align"], expected)


# ---------------------------------------------------------------- gradients and invariants


def test_gradcheck_float64() -> None:
    g = torch.Generator().manual_seed(3)
    x = (0.5 * torch.randn(4, 3, generator=g, dtype=F64)).requires_grad_()
    y = (0.5 * torch.randn(5, 3, generator=g, dtype=F64)).requires_grad_()
    sigma = torch.tensor(1.5, dtype=F64, requires_grad=True)
    for config in (VavaConfig(window=1, inter_weight=0.1, align_weight=1.0), VavaConfig(mode="reference", window=1)):
        assert torch.autograd.gradcheck(lambda a, b, s: vava_pair_terms(a, b, 7, config, s)["total"], (x, y, sigma))


def test_plan_marginals() -> None:
    x, y = (v.double() for v in case_b())
    plan = vava_pair_terms(x, y, 1000, PM)["plan"]
    assert torch.allclose(plan.sum(1), torch.full((9,), 1 / 9, dtype=F64), rtol=0, atol=1e-15)
    assert float(plan.sum()) == pytest.approx(1.0, abs=1e-14)
    assert 1e-4 < (plan.sum(0) - 1 / 9).abs().max() < 1e-2  # columns only close after 21 updates


@pytest.mark.parametrize("mode", ["paper", "reference"])
def test_identical_sequences_align_on_the_diagonal(mode: str) -> None:
    x = trajectory(20, 128)
    plan = vava_pair_terms(x, x.clone(), 0, VavaConfig(mode=mode))["plan"]
    assert plan[1:, 1:].argmax(1).tolist() == list(range(20))


@pytest.mark.parametrize("config", [PM, R], ids=["paper", "reference"])
def test_virtual_frame_absorbs_an_inserted_outlier(config: VavaConfig) -> None:
    y = trajectory(12)
    x = torch.cat([y[:6], torch.full((1, 16), 3.0, dtype=F64), y[6:]])  # background frame after frame 5
    plan = vava_pair_terms(x, y, 0, config)["plan"]
    outlier_row = plan[6 + 1]
    assert outlier_row[0] > 0.99 * outlier_row.sum()
    others = torch.cat([plan[1:7, 1:], plan[8:, 1:]])
    assert others.argmax(1).tolist() == list(range(12))  # the real frames keep their partners


def test_loss_module_batches_dtypes_and_autocast() -> None:
    embeddings = case_c()
    loss_fn = VavaLoss(PM)
    loss32, components = loss_fn(PairBatch(embeddings, None, None, None, 150000))
    loss64, _ = loss_fn(PairBatch(embeddings.double(), None, None, None, 150000))
    assert loss32.dtype == torch.float32 and loss64.dtype == F64
    assert_rel(loss32, float(loss64))
    assert set(components) >= {"align", "intra", "inter", "phi", "kernel_clamped", "marginal_error"}
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss_bf16, _ = loss_fn(PairBatch(embeddings.bfloat16(), None, None, None, 150000))
    assert loss_bf16.dtype == torch.float32 and float(loss_bf16) == pytest.approx(float(loss32), rel=1e-2)


def test_both_orders_averages_the_two_directions() -> None:
    embeddings = case_c()
    forward = VavaLoss(PM)(PairBatch(embeddings, None, None, None, 5))[0]
    backward = VavaLoss(PM)(PairBatch(embeddings.flip(1), None, None, None, 5))[0]
    both = VavaLoss(VavaConfig(both_orders=True))(PairBatch(embeddings, None, None, None, 5))[0]
    assert_rel(both, float(forward + backward) / 2)


def test_learned_variance_starts_at_sigma_prior_and_trains() -> None:
    embeddings = case_c()
    fixed = VavaLoss(PM)(PairBatch(embeddings, None, None, None, 0))[0]
    learned = VavaLoss(VavaConfig(learned_variance=True))
    loss, components = learned(PairBatch(embeddings, None, None, None, 0))
    assert_rel(loss, float(fixed))
    assert_rel(components["sigma"], 2.0)
    loss.backward()
    assert learned.width_head.mlp[-1].weight.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="^embedding_dim"):
        learned(PairBatch(embeddings[..., :64], None, None, None, 0))


# ---------------------------------------------------------------- schedule, priors, config


@pytest.mark.parametrize("step, phi", [(0, 0.999), (1000, 0.969461), (10_000, 0.904792), (150_000, 0.678960),
                                       (480_000, 0.500401), (10**6, 0.367695), (10**9, 0.001)])
def test_phi_schedule(step: int, phi: float) -> None:
    assert phi_schedule(step) == pytest.approx(phi, rel=1e-5)


def test_prior_constants() -> None:
    nearest = torch.arange(20)[None]
    log_p, idm = prior_and_idm(nearest, 20, 0.999, PM)
    assert float(log_p[0, 0, 5].exp()) == pytest.approx(0.00593012, rel=1e-5)
    assert float(log_p[0, 0, 0].exp()) == pytest.approx(0.199471, rel=1e-5)
    assert float(idm[0, 3, 0]) == pytest.approx(35.4751, rel=1e-5)
    assert float(prior_and_idm(torch.arange(40)[None], 40, 0.999, PM)[1][0, 0, 7]) == pytest.approx(77.4097, rel=1e-5)


def test_three_prior_shapes_are_valid_and_different() -> None:
    nearest = torch.tensor([[0, 2, 1, 4, 4, 7, 6, 7]])
    priors = {prior: prior_and_idm(nearest, 8, 0.7, VavaConfig(prior=prior))[0].exp()
              for prior in ("gmm", "flat_top", "beta")}
    for prior in priors.values():
        assert torch.isfinite(prior).all() and (prior > 0).all()
    assert not torch.allclose(priors["gmm"], priors["flat_top"])
    assert not torch.allclose(priors["gmm"], priors["beta"])
    assert not torch.allclose(priors["flat_top"], priors["beta"])
    flat_zero = prior_and_idm(nearest, 8, 0.7, VavaConfig(prior="flat_top", flat_top_eta=0.0))[0]
    assert torch.allclose(flat_zero.exp(), priors["gmm"])
    x, y = (v.double() for v in case_b())
    for prior in ("flat_top", "beta"):
        assert torch.isfinite(vava_pair_terms(x, y, 1000, VavaConfig(prior=prior))["total"])


@pytest.mark.parametrize("options, key", [
    ({"mode": "tf"}, "mode"), ({"prior": "cauchy"}, "prior"), ({"sinkhorn_iters": -1}, "sinkhorn_iters"),
    ({"sinkhorn_iters": 2.5}, "sinkhorn_iters"), ({"lambda2": 0.0}, "lambda2"), ({"lambda1": -1.0}, "lambda1"),
    ({"sigma_prior": float("nan")}, "sigma_prior"), ({"temperature": 0}, "temperature"), ({"window": True}, "window"),
    ({"zeta": -0.5}, "zeta"), ({"align_weight": -1.0}, "align_weight"), ({"clamp_log_kernel": 1}, "clamp_log_kernel"),
    ({"beta_alpha": 0.0}, "beta_alpha"), ({"flat_top_eta": -1.0}, "flat_top_eta"),
    ({"learned_variance": True, "prior": "beta"}, "learned_variance"), ({"embedding_dim": 0}, "embedding_dim"),
])
def test_config_rejects_bad_values(options: dict, key: str) -> None:
    with pytest.raises(ValueError, match=f"^{key} must be"):
        VavaConfig(**options)


def test_config_defaults_follow_the_spec() -> None:
    expected = {"mode": "paper", "sinkhorn_iters": 20, "lambda1": 1.0, "lambda2": 0.1, "sigma_prior": 2.0,
                "virtual_distance": 5.0, "zeta": 0.5, "clamp_log_kernel": True, "window": 15, "margin": 2.0,
                "gamma": 0.5, "temperature": 0.5, "inter_weight": 1e-4, "align_weight": None, "both_orders": False,
                "prior": "gmm", "learned_variance": False, "port_inter_bug": False}
    assert {key: getattr(VavaConfig(), key) for key in expected} == expected
