"""The objectives registry: config validation, a smoke test of each registered objective and its options, and
the contract every registered objective must meet (timm-style: one test parametrised over the registry)."""
from __future__ import annotations

import math
import re

import pytest
import torch

from vava.core.config import parse_overrides
from vava.core.errors import VavaError
from vava.stages.train.config import load_config
from vava.stages.train.loop import resolved
from vava.stages.train.objectives import OBJECTIVES, build_config, build_objective
from vava.stages.train.objectives.base import PairBatch

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


@pytest.mark.parametrize(("override", "message"), [("loss.gamma=inf", "gamma must be a finite number >= 0, got 'inf'"),
                                                   ("loss.gamma=true", "gamma must be a finite number >= 0, got True")])
def test_objective_options_refuse_infinity_and_booleans(override: str, message: str) -> None:
    with pytest.raises(VavaError, match=f"^objective vava: {message}"):
        resolved(load_config(None, parse_overrides([override])))


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
    batch = tiny_batch(16, seed=12)
    embeddings = batch.embeddings
    torch.manual_seed(0)
    loss, components = objective(batch)
    assert loss.shape == () and math.isfinite(float(loss.detach()))
    assert all(v.shape == () and not v.requires_grad for v in components.values())
    loss.backward()
    assert bool(torch.isfinite(embeddings.grad).all()) and float(embeddings.grad.abs().sum()) > 0
    for parameter in objective.parameters():
        assert parameter.grad is not None and bool(torch.isfinite(parameter.grad).all())


# ---------------------------------------------------------------- contract: every registered objective


def tiny_batch(dim: int, seed: int) -> PairBatch:
    """Two pairs of 8 sampled frames with `dim`-wide embeddings (leaf tensor), labels 0..3 and -1."""
    g = torch.Generator().manual_seed(seed)
    embeddings = torch.randn(2, 2, 8, dim, generator=g).requires_grad_()
    lengths = torch.tensor([[30, 25], [40, 12]])
    steps = torch.stack([torch.stack([torch.sort(torch.randperm(int(n), generator=g)[:8]).values for n in row])
                         for row in lengths])
    return PairBatch(embeddings, steps, lengths, torch.randint(-1, 4, (2, 2, 8), generator=g), 100)


def loss_and_gradients(name: str, seed: int) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """The default objective `name` built and run on `tiny_batch` under `torch.manual_seed(seed)`."""
    torch.manual_seed(seed)
    objective = build_objective(name)
    batch = tiny_batch(getattr(objective.config, "embedding_dim", 16), seed)
    loss, _ = objective(batch)
    loss.backward()
    return loss.detach(), [batch.embeddings.grad, *(p.grad for p in objective.parameters())]


@pytest.mark.parametrize("name", sorted(OBJECTIVES))
def test_every_objective_builds_from_its_default_config(name: str) -> None:
    objective = build_objective(name)
    assert type(objective) is OBJECTIVES[name] and objective.name == name
    assert objective.config == OBJECTIVES[name].config_class()


@pytest.mark.parametrize("name", sorted(OBJECTIVES))
def test_every_objective_derives_its_options_from_a_copy_and_keeps_those_set(name: str) -> None:
    config = load_config(None, {"objective": name, "steps": 40, "loss": {"window": 3}})
    derived = OBJECTIVES[name].derive(config)
    assert derived is not config.loss and config.loss == {"window": 3} and derived["window"] == 3


def test_vava_derives_total_steps_for_a_budget_phi_schedule_only() -> None:
    def derived(**loss: object) -> dict:
        return OBJECTIVES["vava"].derive(load_config(None, {"objective": "vava", "steps": 40, "loss": loss}))

    assert derived(phi_schedule="budget") == {"phi_schedule": "budget", "total_steps": 40}
    assert derived(phi_schedule="budget", total_steps=7)["total_steps"] == 7
    assert derived(phi_schedule="official") == {"phi_schedule": "official"}


@pytest.mark.parametrize("name", sorted(OBJECTIVES))
def test_every_objective_gives_a_finite_scalar_loss_and_finite_gradients(name: str) -> None:
    loss, gradients = loss_and_gradients(name, seed=0)
    assert loss.shape == () and math.isfinite(float(loss))
    assert all(g is not None and bool(torch.isfinite(g).all()) for g in gradients)
    assert float(gradients[0].abs().sum()) > 0  # the loss reaches the embeddings


@pytest.mark.parametrize("name", sorted(OBJECTIVES))
def test_every_objective_is_deterministic_under_a_seed(name: str) -> None:
    (loss_a, grads_a), (loss_b, grads_b) = loss_and_gradients(name, seed=3), loss_and_gradients(name, seed=3)
    assert torch.equal(loss_a, loss_b)
    assert all(torch.equal(a, b) for a, b in zip(grads_a, grads_b, strict=True))


@pytest.mark.parametrize("name", sorted(OBJECTIVES))
def test_every_objective_rejects_an_unknown_option_in_one_line_naming_it(name: str) -> None:
    for build in (build_config, build_objective):
        with pytest.raises(VavaError) as caught:
            build(name, {"no_such_option": 1})
        message = str(caught.value)
        assert "\n" not in message
        assert re.fullmatch(rf"objective {name}: unknown option\(s\) no_such_option \(known: [a-z_0-9, ]+\)", message)
