"""Supervised baseline: per-frame phase classification, docs/method.md#supervised (TCC's
classification algorithm).

A linear head (the objective's submodule, trained jointly and discarded at evaluation) maps each frame
embedding to `num_classes` logits; the loss is the mean cross-entropy over all frames of the 2B videos
whose label is known (labels -1 are ignored). A batch without any known label gives a zero loss that is
still connected to the embeddings and the head. A label >= num_classes is an error.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from vava.core.validation import UNIT_INTERVAL, checked, integer, validate
from vava.stages.train.objectives.base import Objective, PairBatch, detached

UNKNOWN = -1


@dataclass(frozen=True)
class SupervisedConfig:
    """Options of the supervised baseline (CLASSIFICATION.* of TCC's config)."""

    num_classes: int = checked(integer(2), 16)              # phases K (per dataset: docs/evaluation.md#datasets)
    embedding_dim: int = checked(integer(1), 128)           # D, the head's input (the trainer fills it from the model)
    label_smoothing: float = checked(UNIT_INTERVAL, 0.0)    # CLASSIFICATION.LABEL_SMOOTHING

    def __post_init__(self) -> None:
        validate(self)


class SupervisedLoss(Objective):
    """Per-frame phase cross-entropy with a linear head; see the module docstring."""

    name: ClassVar[str] = "supervised"
    config_class: ClassVar[type] = SupervisedConfig
    uses_labels: ClassVar[bool] = True

    def __init__(self, config: SupervisedConfig | None = None) -> None:
        super().__init__(config)
        self.head = nn.Linear(self.config.embedding_dim, self.config.num_classes)

    def forward(self, batch: PairBatch) -> tuple[Tensor, dict[str, Tensor]]:
        z, labels = batch.embeddings.flatten(0, -2), batch.labels.flatten().to(batch.embeddings.device)
        if z.shape[-1] != self.config.embedding_dim:
            raise ValueError(f"embedding_dim is {self.config.embedding_dim} but the embeddings have "
                             f"{z.shape[-1]} features")
        if bool((labels >= self.config.num_classes).any()) or bool((labels < UNKNOWN).any()):
            bad = labels[(labels >= self.config.num_classes) | (labels < UNKNOWN)][0].item()
            raise ValueError(f"label {bad} is outside 0..{self.config.num_classes - 1} (num_classes is "
                             f"{self.config.num_classes}; -1 marks unknown frames)")
        logits = self.head(z.to(self.head.weight.dtype))
        known = labels != UNKNOWN
        if not bool(known.any()):  # same logged keys every step (the CSV log keeps its first header)
            loss = logits.sum() * 0.0
            return loss, detached({"supervised": loss, "accuracy": torch.tensor(math.nan), "labelled": known.float()})
        loss = F.cross_entropy(logits[known], labels[known], label_smoothing=self.config.label_smoothing)
        accuracy = (logits.detach()[known].argmax(-1) == labels[known]).float().mean()
        return loss, detached({"supervised": loss, "accuracy": accuracy, "labelled": known.float()})


__all__ = ["SupervisedConfig", "SupervisedLoss"]
