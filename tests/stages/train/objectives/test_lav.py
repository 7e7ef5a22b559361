"""LAV (docs/method.md#lav): reference values, the integer window and the IDM limits."""
from __future__ import annotations

from tests.stages.train.objectives.reference import EN, LENGTHS, STEPS, E, assert_rel, pairs
from vava.stages.train.objectives.alignment import pairwise_sq_dists, soft_dtw
from vava.stages.train.objectives.lav import LavConfig, LavLoss, contrastive_idm, idm_negatives, lav_pair_terms

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
