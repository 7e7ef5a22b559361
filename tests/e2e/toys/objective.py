"""A toy objective: pull the mean embeddings of the two videos of each pair together."""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from torch import Tensor

from vava.core.validation import checked, number, validate
from vava.stages.train.objectives.base import Objective, PairBatch, detached


@dataclass(frozen=True)
class ToyConfig:
    weight: float = checked(number(above=0), 1.0)

    def __post_init__(self) -> None:
        validate(self)


class ToyLoss(Objective):
    name: ClassVar[str] = "toy"
    config_class: ClassVar[type] = ToyConfig

    def forward(self, batch: PairBatch) -> tuple[Tensor, dict[str, Tensor]]:
        means = batch.embeddings.mean(dim=2)  # [B, 2, D]
        loss = self.config.weight * (means[:, 0] - means[:, 1]).pow(2).sum(-1).mean()
        return loss, detached({"gap": loss})
