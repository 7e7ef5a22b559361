"""LAV: learning by aligning videos in time (Haresh et al., CVPR 2021); docs/method.md#lav.

Per pair (a, b), both L2-normalised:
    L_pair = (sdtw_gamma(C_ab) + alpha * (I(a) + I(b))) / N,     C_ab[i, j] = |a_i - b_j|^2
with the plain soft-DTW value (or the divergence with `sdtw_normalize`) and Contrastive-IDM
    I(x) = sum_ij  neg_ij * W_ij * max(0, margin - D_ij) + (1 - neg_ij) * D_ij,   W_ij = 1 + (t_i - t_j)^2
over all ordered frame pairs, D_ij = |x_i - x_j|^2, t = frame index / video length, and neg_ij when the
two frames are more than `sigma` raw frames apart. The batch loss is the mean over the pairs.

Choices (docs/method.md#lav):
  * `window_test="integer"` (default) decides neg_ij exactly on the integer frame indices; "float32"
    replicates the official comparison of float32 normalised times against sigma / L (unstable for
    frames exactly sigma apart; for parity tests only).
  * N is `frames_divisor`; None (default) uses the number of sampled frames T, which is the official
    N = TRAIN.NUM_FRAMES (= T) at every T.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor

from vava.core.validation import FLAG, checked, integer, number, one_of, optional, validate
from vava.stages.train.objectives.alignment import pairwise_sq_dists, soft_dtw, soft_dtw_divergence
from vava.stages.train.objectives.base import Objective, PairBatch, detached

WINDOW_TESTS = ("integer", "float32")


@dataclass(frozen=True)
class LavConfig:
    """LAV options; defaults are the official config (docs/method.md#lav)."""

    gamma: float = checked(number(above=0), 0.1)            # soft-DTW smoothing (DTWALIGNMENT.SDTW_GAMMA)
    sdtw_normalize: bool = checked(FLAG, False)             # use the soft-DTW divergence instead of the value
    alpha: float = checked(number(at_least=0), 0.5)         # weight of I(a) + I(b) (LOSSES.ALPHA)
    sigma: int = checked(integer(0), 10)                    # IDM window in raw frames (LOSSES.SIGMA)
    margin: float = checked(number(at_least=0), 2.0)        # IDM margin lambda (LOSSES.IDM_IDX_MARGIN)
    l2_normalize: bool = checked(FLAG, True)                # normalise embeddings first (LOSSES.L2_NORMALIZE)
    frames_divisor: int | None = checked(optional(integer(1)), None)  # N; None: the sampled frames per video T
    window_test: str = checked(one_of(*WINDOW_TESTS), "integer")  # integer | float32 (official rounding)

    def __post_init__(self) -> None:
        validate(self)


def idm_negatives(steps: Tensor, lengths: Tensor, sigma: int, window_test: str = "integer") -> Tensor:
    """Negative mask [..., T, T] of Contrastive-IDM: frames more than `sigma` raw frames apart.

    steps [..., T] (long), lengths [...]. "float32" compares |t_i - t_j| > sigma / L in float32 with
    t = steps / L, as the official code does (each quotient correctly rounded to float32).
    """
    if window_test == "float32":
        length = lengths.to(torch.float32)[..., None]
        times = steps.to(torch.float32) / length
        threshold = torch.full_like(length, float(sigma)) / length  # not sigma / length: that multiplies by 1/L
        return (times[..., :, None] - times[..., None, :]).abs() > threshold[..., None]
    return (steps[..., :, None] - steps[..., None, :]).abs() > sigma


def contrastive_idm(x: Tensor, times: Tensor, negative: Tensor, margin: float) -> Tensor:
    """I(x) for x [..., T, d], normalised times [..., T] and the negative mask [..., T, T] -> [...]."""
    dist = pairwise_sq_dists(x, x)
    weight = 1 + (times[..., :, None] - times[..., None, :]) ** 2
    return torch.where(negative, weight * (margin - dist).clamp_min(0), dist).sum(dim=(-2, -1))


def lav_pair_terms(a: Tensor, b: Tensor, steps: Tensor, lengths: Tensor,
                   config: LavConfig = LavConfig()) -> dict[str, Tensor]:
    """Per-pair terms for a, b [P, T, d] (already normalised if wanted), steps [P, 2, T], lengths [P, 2].

    Returns sdtw, idm_a, idm_b and lav (L_pair), each [P].
    """
    times = steps.to(a.dtype) / lengths.to(a.dtype)[..., None]
    negative = idm_negatives(steps, lengths, config.sigma, config.window_test)
    if config.sdtw_normalize:
        alignment = soft_dtw_divergence(a, b, config.gamma)
    else:
        alignment = soft_dtw(pairwise_sq_dists(a, b), config.gamma)
    idm_a = contrastive_idm(a, times[:, 0], negative[:, 0], config.margin)
    idm_b = contrastive_idm(b, times[:, 1], negative[:, 1], config.margin)
    divisor = a.shape[-2] if config.frames_divisor is None else config.frames_divisor
    total = (alignment + config.alpha * (idm_a + idm_b)) / divisor
    return {"sdtw": alignment, "idm_a": idm_a, "idm_b": idm_b, "lav": total}


class LavLoss(Objective):
    """Mean LAV pair loss over the pairs (embeddings[:, 0], embeddings[:, 1]) of a PairBatch."""

    name: ClassVar[str] = "lav"
    config_class: ClassVar[type] = LavConfig

    def forward(self, batch: PairBatch) -> tuple[Tensor, dict[str, Tensor]]:
        z = F.normalize(batch.embeddings, dim=-1) if self.config.l2_normalize else batch.embeddings
        terms = lav_pair_terms(z[:, 0], z[:, 1], batch.frame_indices, batch.video_lengths, self.config)
        components = {"sdtw": terms["sdtw"], "idm": terms["idm_a"] + terms["idm_b"]}
        return terms["lav"].mean(), detached(components)


__all__ = ["LavConfig", "LavLoss", "contrastive_idm", "idm_negatives", "lav_pair_terms"]
