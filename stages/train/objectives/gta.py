"""GTA: global temporal alignment and cycle-consistency (Hadji et al., CVPR 2021);
docs/method.md#gta.

For an anchor X and each partner Y of its group (L2-normalised embeddings):
  * contrastive costs C^XY_ij = -log softmax_i(x_i . y_j / gamma_f) (softmax over the frames of the
    first sequence, per column) and C^YX;
  * smoothed DTW tables R^XY, R^YX (`soft_dtw` wavefront, relaxation `prob` = GTA's dtw_prob, `softmin` =
    dtw_minGamma, `min` = non-diff), finite border (no NaN gradients);
  * with `revcons`, P = (A^XY A^YX)^T, A = column softmax of -R, used as logits (as the official code
    does) of a label-smoothed cross-entropy against the identity.
  L = CE_mean over all rows + sdtw_weight * (mean R^XY[N, M] + mean R^YX[M, N]).

Groups (`grouping`): the official batch is 4 videos of one action, all anchored on video 0 (a star of
B-1 pairs). A PairBatch may mix actions across pairs, so by default (`pair`) every pair is a group of 2:
its first video is the anchor and the second its partner, and the terms are averaged over the B pairs
(the same formula as the star, with B anchors). `grouping="batch"` treats all 2B videos as one group of
one action anchored on the batch's first video (2 pairs = GTA's default batch of 4).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor

from vava.core.validation import FLAG, UNIT_INTERVAL, checked, number, one_of, validate
from vava.stages.train.objectives.alignment import RELAXATIONS, soft_dtw
from vava.stages.train.objectives.base import Objective, PairBatch, detached

GROUPINGS = ("pair", "batch")
FLT_MAX = 3.4028234663852886e38  # official border; SOFT_DTW_BORDER gives the same values


@dataclass(frozen=True)
class GtaConfig:
    """GTA options; defaults are the official config (docs/method.md#gta)."""

    relaxation: str = checked(one_of(*RELAXATIONS), "prob")  # prob (dtw_prob) | softmin (dtw_minGamma) | min (non-diff)
    gamma_s: float = checked(number(above=0), 0.1)          # smoothing of the DTW relaxation (DTW_GAMMA_S)
    gamma_f: float = checked(number(above=0), 0.1)          # temperature of the contrastive frame cost (DTW_GAMMA_F)
    revcons: bool = checked(FLAG, True)                     # add the global cycle-consistency term
    label_smoothing: float = checked(UNIT_INTERVAL, 0.1)    # of the cycle-consistency cross-entropy
    # weight of each mean table value (hard-coded 0.1 officially)
    sdtw_weight: float = checked(number(at_least=0), 0.1)
    # normalise embeddings first (CONV_EMBEDDER_MODEL.L2_NORMALIZE)
    l2_normalize: bool = checked(FLAG, True)
    # pair: each pair anchored on its first video | batch: one star over 2B videos
    grouping: str = checked(one_of(*GROUPINGS), "pair")

    def __post_init__(self) -> None:
        validate(self)


def contrastive_cost(x: Tensor, y: Tensor, gamma_f: float) -> Tensor:
    """C_ij = -log softmax over i of x_i . y_j / gamma_f: [..., N, d], [..., M, d] -> [..., N, M]."""
    return -torch.log_softmax(x @ y.transpose(-1, -2) / gamma_f, dim=-2)


def cycle_matrix(table_xy: Tensor, table_yx: Tensor) -> Tensor:
    """P = (A^XY A^YX)^T [..., N, N] from tables R^XY [..., N, M] and R^YX [..., M, N]; rows sum to 1."""
    return (torch.softmax(-table_xy, dim=-2) @ torch.softmax(-table_yx, dim=-2)).transpose(-1, -2)


def gta_loss(z: Tensor, config: GtaConfig = GtaConfig()) -> tuple[Tensor, dict[str, Tensor]]:
    """GTA loss of groups z [G, V, T, D] (or one group [V, T, D]), each a star anchored on video 0.

    Embeddings are used as given (normalise them first); all 2 G (V-1) tables are one wavefront call.
    """
    if z.dim() == 3:
        z = z[None]
    groups, videos, frames, dim = z.shape
    if videos < 2:
        raise ValueError(f"GTA needs at least 2 videos per group, got {videos}")
    anchor = z[:, :1].expand(groups, videos - 1, frames, dim)
    partner = z[:, 1:]
    costs = torch.stack([contrastive_cost(anchor, partner, config.gamma_f),
                         contrastive_cost(partner, anchor, config.gamma_f)])      # [2, G, V-1, T, T]
    tables = soft_dtw(costs, config.gamma_s, relaxation=config.relaxation, table=config.revcons)
    values = tables[..., -1, -1] if config.revcons else tables                   # [2, G, V-1]
    alignment = config.sdtw_weight * values.mean(dim=(-2, -1)).sum()
    components = {"sdtw_xy": values[0].mean(), "sdtw_yx": values[1].mean()}
    if not config.revcons:
        return alignment, {**components, "gta": alignment}
    logits = cycle_matrix(tables[0], tables[1]).reshape(-1, frames)
    target = torch.arange(frames, device=z.device).repeat(groups * (videos - 1))
    cycle = F.cross_entropy(logits, target, label_smoothing=config.label_smoothing)
    total = cycle + alignment
    return total, {**components, "cycle": cycle, "gta": total}


class GtaLoss(Objective):
    """GTA on the groups of a PairBatch (each pair by default); see the module docstring."""

    name: ClassVar[str] = "gta"
    config_class: ClassVar[type] = GtaConfig

    def forward(self, batch: PairBatch) -> tuple[Tensor, dict[str, Tensor]]:
        z = F.normalize(batch.embeddings, dim=-1) if self.config.l2_normalize else batch.embeddings
        if self.config.grouping == "batch":
            z = z.flatten(0, 1)[None]
        loss, components = gta_loss(z, self.config)
        return loss, detached(components)


__all__ = ["FLT_MAX", "GtaConfig", "GtaLoss", "contrastive_cost", "cycle_matrix", "gta_loss"]
