"""TCN: time-contrastive networks (Sermanet et al., ICRA 2018), single view; docs/method.md#tcn.

`loss_type="npairs"` (default) is the TCN baseline as TCC ran it (and LAV and VAVA report): per video,
the sampled frames are taken in interleaved (positive, anchor) order, P = frames 0, 2, 4, ...,
A = frames 1, 3, 5, ... (a positive is the frame just before its anchor), and
    L_video = mean_k CE(P_k . A^T, k) + 0.25 * reg_lambda * (mean_k |P_k|^2 + mean_k |A_k|^2)
with raw dot products; the other anchors of the same video are the negatives. The batch loss is the
mean over all 2B videos (pairing plays no role).

Positive window: TCC draws each positive within `positive_window` frames before its anchor (extra frames
the shared pair sampler does not provide). Here a (positive, anchor) row enters the cross-entropy only
when its frame indices are 1..positive_window apart; other rows are dropped from the mean (their frames
still serve as negatives and in the norm term), and the fraction kept is logged as `valid_rows`. A video
with no valid row contributes its norm term only. positive_window=None keeps every row (the plain
interleaved view of docs/method.md#baseline-reference-values). With an odd T the last frame is left out.

`loss_type="triplet"` is the original single-view TCN (tensorflow/models research/tcn): L2-normalised
embeddings, squared distances within a video, positives |t_a - t_p| <= pos_radius (p != a), negatives
|t_a - t_n| > neg_radius on real frame indices, semi-hard negative mining, hinge with `margin`; per video
the mean over its (anchor, positive) pairs, then the mean over the videos that have any.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor

from vava.core.validation import FLAG, checked, integer, invalid, number, one_of, optional, validate
from vava.stages.train.objectives.alignment import pairwise_sq_dists
from vava.stages.train.objectives.base import Objective, PairBatch, detached

LOSS_TYPES = ("npairs", "triplet")


@dataclass(frozen=True)
class TcnConfig:
    """TCN options: n-pairs as in TCC's tcn.py (docs/method.md#tcn) or the original triplet loss."""

    loss_type: str = checked(one_of(*LOSS_TYPES), "npairs")  # npairs | triplet
    reg_lambda: float = checked(number(at_least=0), 0.002)   # npairs: weight of the embedding-norm term (REG_LAMBDA)
    # npairs: max frames between positive and anchor; None: no check
    positive_window: int | None = checked(optional(integer(1)), 5)
    pos_radius: int = checked(integer(0), 6)                 # triplet: positives within this many frames
    neg_radius: int = checked(integer(0), 12)                # triplet: negatives more than this many frames away
    margin: float = checked(number(at_least=0), 0.2)         # triplet hinge margin
    # None: the variant's own choice (npairs raw, triplet normalised)
    l2_normalize: bool | None = checked(optional(FLAG), None)

    def __post_init__(self) -> None:
        validate(self)
        if self.neg_radius < self.pos_radius:
            raise invalid(self, "neg_radius", f"must be an integer >= pos_radius, got {self.neg_radius!r}")


def npairs_loss(z: Tensor, steps: Tensor | None = None, reg_lambda: float = 0.002,
                positive_window: int | None = None) -> tuple[Tensor, Tensor]:
    """Per-video n-pairs loss of interleaved (positive, anchor) frames: z [V, T, D], steps [V, T] -> [V].

    Also returns the fraction of rows inside the positive window [V] (1 without a window).
    """
    pairs = z.shape[-2] // 2
    positives, anchors = z[..., 0:2 * pairs:2, :], z[..., 1:2 * pairs:2, :]
    logits = positives @ anchors.transpose(-1, -2)                          # [V, K, K]
    target = torch.arange(pairs, device=z.device).expand(logits.shape[:-1])
    rows = F.cross_entropy(logits.flatten(0, -2), target.flatten(), reduction="none").view(target.shape)
    if positive_window is None or steps is None:
        keep = torch.ones_like(rows)
    else:
        gap = steps[..., 1:2 * pairs:2] - steps[..., 0:2 * pairs:2]
        keep = ((gap >= 1) & (gap <= positive_window)).to(rows.dtype)
    kept = keep.sum(dim=-1)
    cross_entropy = (rows * keep).sum(dim=-1) / kept.clamp_min(1)
    norms = positives.pow(2).sum(-1).mean(-1) + anchors.pow(2).sum(-1).mean(-1)
    return cross_entropy + 0.25 * reg_lambda * norms, kept / pairs


def triplet_semihard_loss(z: Tensor, steps: Tensor, pos_radius: int = 6, neg_radius: int = 12,
                          margin: float = 0.2) -> tuple[Tensor, Tensor]:
    """Per-video single-view TCN triplet loss: z [V, T, D] (normalise first), steps [V, T] -> [V].

    Also returns whether each video had an (anchor, positive) pair [V] (its loss is 0 otherwise).
    """
    dist = pairwise_sq_dists(z, z)                                           # [V, T, T]
    gap = (steps[..., :, None] - steps[..., None, :]).abs()
    eye = torch.eye(z.shape[-2], dtype=torch.bool, device=z.device)
    positive = (gap <= pos_radius) & ~eye                                    # [V, a, p]
    negative = gap > neg_radius                                              # [V, a, n]
    d_ap = dist[..., :, :, None]                                             # [V, a, p, 1]
    d_an = dist[..., :, None, :]                                             # [V, a, 1, n]
    negative_an = negative[..., :, None, :]
    big = torch.finfo(dist.dtype).max
    semi_hard = torch.where(negative_an & (d_an > d_ap), d_an, big).amin(dim=-1)   # [V, a, p]
    hardest = torch.where(negative, dist, -big).amax(dim=-1)                       # [V, a]
    fallback = torch.where(negative.any(dim=-1), hardest, dist.amin(dim=-1))[..., :, None]
    d_neg = torch.where(semi_hard < big, semi_hard, fallback)
    hinge = (margin + dist - d_neg).clamp_min(0) * positive
    count = positive.sum(dim=(-2, -1))
    return hinge.sum(dim=(-2, -1)) / count.clamp_min(1), count > 0


class TcnLoss(Objective):
    """TCN on every video of a PairBatch (2B videos); see the module docstring."""

    name: ClassVar[str] = "tcn"
    config_class: ClassVar[type] = TcnConfig

    def forward(self, batch: PairBatch) -> tuple[Tensor, dict[str, Tensor]]:
        c = self.config
        z, steps = batch.embeddings.flatten(0, 1), batch.frame_indices.flatten(0, 1)
        normalize = (c.loss_type == "triplet") if c.l2_normalize is None else c.l2_normalize
        if normalize:
            z = F.normalize(z, dim=-1)
        if c.loss_type == "triplet":
            per_video, has_pairs = triplet_semihard_loss(z, steps, c.pos_radius, c.neg_radius, c.margin)
            loss = (per_video * has_pairs).sum() / has_pairs.sum().clamp_min(1)
            return loss, detached({"tcn": loss, "videos_with_pairs": has_pairs.float()})
        if z.shape[-2] < 2:
            raise ValueError(f"TCN n-pairs needs at least 2 frames per video, got {z.shape[-2]}")
        per_video, kept = npairs_loss(z, steps, c.reg_lambda, c.positive_window)
        loss = per_video.mean()
        return loss, detached({"tcn": loss, "valid_rows": kept})


__all__ = ["TcnConfig", "TcnLoss", "npairs_loss", "triplet_semihard_loss"]
