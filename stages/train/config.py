"""The training config: what a run depends on, loaded from a preset or YAML file plus overrides."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from vava.core.config import from_dict, merge, read_yaml_mapping, resolve_preset
from vava.core.embedder import EmbedderConfig

MAX_SEED = 2**64


@dataclass(frozen=True)
class DataConfig:
    """How training batches are drawn (Table 8: 4 pairs, T = 20 or 40 frames per video)."""

    frames_per_video: int = 20
    batch_pairs: int = 4
    path: str = "auto"  # auto | zarr | host | device
    workers: int = 2    # DataLoader workers of the zarr path

    def __post_init__(self) -> None:
        for key in ("frames_per_video", "batch_pairs"):
            if getattr(self, key) < 1:
                raise ValueError(f"{key} must be at least 1, got {getattr(self, key)}")
        if self.workers < 0:
            raise ValueError(f"workers must be at least 0, got {self.workers}")


@dataclass(frozen=True)
class OptimConfig:
    """Adam with L2-coupled weight decay and a constant learning rate (Table 8)."""

    lr: float = 1e-4
    weight_decay: float = 1e-5

    def __post_init__(self) -> None:
        if self.lr <= 0 or self.weight_decay < 0:
            raise ValueError(f"lr must be positive and weight_decay non-negative, got {self.lr}, {self.weight_decay}")


@dataclass(frozen=True)
class TrainConfig:
    """Everything a training run depends on; saved resolved in the run folder."""

    objective: str = "vava"
    loss: dict[str, Any] = field(default_factory=dict)  # options of the objective's own config
    steps: int = 1000
    seed: int = 0
    checkpoint_every: int = 500
    log_every: int = 10
    amp: bool = True          # bf16 autocast on GPU (the alignment losses compute in float32 inside)
    tensorboard: bool = False
    data: DataConfig = field(default_factory=DataConfig)
    model: EmbedderConfig = field(default_factory=EmbedderConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)

    def __post_init__(self) -> None:
        for key in ("steps", "checkpoint_every", "log_every"):
            if getattr(self, key) < 1:
                raise ValueError(f"{key} must be at least 1, got {getattr(self, key)}")
        if not 0 <= self.seed < MAX_SEED:  # torch.manual_seed takes 64-bit unsigned seeds only
            raise ValueError(f"seed must be in [0, 2**64), got {self.seed}")



def load_config(preset: str | None, overrides: dict[str, Any]) -> TrainConfig:
    """Defaults <- preset YAML <- overrides, validated."""
    values = read_yaml_mapping(resolve_preset(preset)) if preset is not None else {}
    return from_dict(TrainConfig, merge(values, overrides))
