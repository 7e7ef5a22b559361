"""What every training objective receives and returns."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from torch import Tensor, nn

from vava.stages.train.config import TrainConfig


@dataclass
class PairBatch:
    """Frame embeddings of B pairs of videos of the same action, T sampled frames per video.

    Row order is time order: `frame_indices` are sorted within each video.
    """

    embeddings: Tensor     # [B, 2, T, D]
    frame_indices: Tensor  # [B, 2, T] long: position of each sampled frame in its video
    video_lengths: Tensor  # [B, 2] long: frame count of each video
    labels: Tensor         # [B, 2, T] long: phase labels (-1 unknown); only `uses_labels` objectives read them
    step: int              # optimiser updates done so far (schedules such as VAVA's phi use it)


class Objective(nn.Module):
    """A training loss. Subclasses set `name` and `config_class` (the dataclass of their options,
    defaults used when no config is given), and may own parameters (heads), which the trainer
    optimises together with the embedder."""

    name: ClassVar[str]
    config_class: ClassVar[type]
    uses_labels: ClassVar[bool] = False

    def __init__(self, config: Any = None) -> None:
        super().__init__()
        self.config = self.config_class() if config is None else config

    @classmethod
    def derive(cls, config: TrainConfig) -> dict[str, Any]:
        """The loss options of a training config (`config.loss`), with those this objective derives from the
        rest of it (e.g. from `steps`) filled in where not set. Default: `config.loss` unchanged."""
        return dict(config.loss)

    def forward(self, batch: PairBatch) -> tuple[Tensor, dict[str, Tensor]]:
        """Return the scalar loss and named components (detached scalars) for logging."""
        raise NotImplementedError


def detached(components: dict[str, Tensor]) -> dict[str, Tensor]:
    """Components for logging: detached float scalars."""
    return {name: value.detach().float().mean() for name, value in components.items()}


__all__ = ["Objective", "PairBatch", "detached"]
