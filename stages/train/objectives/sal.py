"""SaL: shuffle and learn (Misra et al., ECCV 2016) as TCC ran it; docs/method.md#sal.

Order verification on frame triplets of the T sampled frames of each of the 2B videos (pairing plays no
role). Sampling: V * num_samples rows, row r from video r mod V; per row 5 distinct sorted
positions a < b < c < d < e among the sampled frames; one coin per batch reverses every row to
descending order; exactly floor(shuffle_fraction * rows) rows, randomly placed, are "shuffled" (label 1)
and use (b, a, d) or (b, e, d) (a coin per row), the others (b, c, d) (label 0). Frames are gathered
along the frame axis (the official TF call gathers channels).

The classifier head, Linear(3D, 128) + ReLU + Linear(128, 64) + ReLU + Linear(64, 2), is a submodule of
the objective, trained with it (the trainer's weight decay stands in for the official L2 regulariser)
and discarded at evaluation. Dropout is 0 officially and not modelled. Draws use torch's global CPU
generator, so seeded and resumed runs repeat them.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from vava.core.validation import UNIT_INTERVAL, checked, integer, validate
from vava.stages.train.objectives.base import Objective, PairBatch, detached

TUPLE = 5  # positions drawn per row
HIDDEN = (128, 64)


@dataclass(frozen=True)
class SalConfig:
    """SaL options; defaults from TCC's config (docs/method.md#sal)."""

    num_samples: int = checked(integer(1), 8)               # rows per video (SAL.NUM_SAMPLES)
    shuffle_fraction: float = checked(UNIT_INTERVAL, 0.75)  # fraction of rows labelled shuffled (SAL.SHUFFLE_FRACTION)
    label_smoothing: float = checked(UNIT_INTERVAL, 0.0)    # SAL.LABEL_SMOOTHING
    embedding_dim: int = checked(integer(1), 128)           # D; the head's input is 3D

    def __post_init__(self) -> None:
        validate(self)


class SalSample(NamedTuple):
    video: Tensor     # [R] long: video of each row (r mod V)
    triplets: Tensor  # [R, 3] long: frame positions in triplet order
    labels: Tensor    # [R] long: 1 shuffled, 0 ordered


def sample_triplets(videos: int, frames: int, num_samples: int, shuffle_fraction: float,
                    generator: torch.Generator | None = None) -> SalSample:
    """Draw SaL rows as described in the module docstring (on the CPU)."""
    if frames < TUPLE:
        raise ValueError(f"SaL needs at least {TUPLE} sampled frames per video, got {frames}")
    rows = videos * num_samples
    positions = torch.rand(rows, frames, generator=generator).argsort(dim=-1)[:, :TUPLE].sort(dim=-1).values
    if torch.rand((), generator=generator) < 0.5:  # one coin for the whole batch
        positions = positions.flip(-1)
    shuffled = int(shuffle_fraction * rows)
    labels = torch.zeros(rows, dtype=torch.long)
    labels[torch.randperm(rows, generator=generator)[:shuffled]] = 1
    outer = torch.where(torch.rand(rows, generator=generator) < 0.5, 0, 4)  # a or e
    middle = torch.where(labels == 1, positions.gather(1, outer[:, None])[:, 0], positions[:, 2])
    triplets = torch.stack([positions[:, 1], middle, positions[:, 3]], dim=-1)
    return SalSample(torch.arange(rows) % videos, triplets, labels)


def make_head(dim: int) -> nn.Sequential:
    """Linear(3 dim, 128) + ReLU + Linear(128, 64) + ReLU + Linear(64, 2), created in that order."""
    return nn.Sequential(nn.Linear(3 * dim, HIDDEN[0]), nn.ReLU(), nn.Linear(HIDDEN[0], HIDDEN[1]), nn.ReLU(),
                         nn.Linear(HIDDEN[1], 2))


def triplet_logits(head: nn.Module, z: Tensor, sample: SalSample) -> Tensor:
    """Head logits [R, 2] of the concatenated triplet frames [x_first; x_middle; x_last] of z [V, T, D]."""
    video, triplets = sample.video.to(z.device), sample.triplets.to(z.device)
    features = z[video[:, None], triplets].flatten(1)  # [R, 3D]
    return head(features.to(next(head.parameters()).dtype))


class SalLoss(Objective):
    """SaL order verification on every video of a PairBatch; see the module docstring."""

    name: ClassVar[str] = "sal"
    config_class: ClassVar[type] = SalConfig

    def __init__(self, config: SalConfig | None = None) -> None:
        super().__init__(config)
        self.head = make_head(self.config.embedding_dim)

    def forward(self, batch: PairBatch) -> tuple[Tensor, dict[str, Tensor]]:
        z = batch.embeddings.flatten(0, 1)
        if z.shape[-1] != self.config.embedding_dim:
            raise ValueError(f"embedding_dim is {self.config.embedding_dim} but the embeddings have "
                             f"{z.shape[-1]} features")
        sample = sample_triplets(z.shape[0], z.shape[1], self.config.num_samples, self.config.shuffle_fraction)
        logits = triplet_logits(self.head, z, sample)
        labels = sample.labels.to(z.device)
        loss = F.cross_entropy(logits, labels, label_smoothing=self.config.label_smoothing)
        accuracy = (logits.detach().argmax(-1) == labels).float().mean()
        return loss, detached({"sal": loss, "accuracy": accuracy})


__all__ = ["SalConfig", "SalLoss", "SalSample", "make_head", "sample_triplets", "triplet_logits"]
