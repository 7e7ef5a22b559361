"""The training config: what a run depends on, loaded from a preset or YAML file plus overrides."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from vava.core.config import from_dict, merge, read_yaml_mapping, resolve_preset
from vava.core.embedder import EmbedderConfig
from vava.core.validation import FLAG, TEXT, Rule, at_least, checked, instance, is_integer, number, one_of, validate

MAX_SEED = 2**64
SEED = Rule(lambda v: is_integer(v) and 0 <= v < MAX_SEED, "in [0, 2**64)")  # what torch.manual_seed takes
NAMES = Rule(lambda v: isinstance(v, (list, tuple)) and all(isinstance(a, str) and a for a in v),
             "a list of action names")


@dataclass(frozen=True)
class DataConfig:
    """How training batches are drawn (Table 8: 4 pairs, T = 20 or 40 frames per video)."""

    frames_per_video: int = checked(at_least(1), 20)
    batch_pairs: int = checked(at_least(1), 4)
    path: str = checked(TEXT, "auto")  # auto | zarr | host | device (checked by the sampler)
    workers: int = checked(at_least(0), 2)  # DataLoader workers of the zarr path
    # train (and embed) only these actions' videos, e.g. one model per Penn Action action; empty: all
    actions: list[str] = checked(NAMES, factory=list)

    def __post_init__(self) -> None:
        validate(self)


SCHEDULES = ("constant", "cosine")


@dataclass(frozen=True)
class OptimConfig:
    """Adam with L2-coupled weight decay (Table 8). The learning rate rises linearly over `warmup_steps`,
    then stays at `lr` (`constant`, Table 8) or follows a half cosine down to 0 at the last step (`cosine`)."""

    lr: float = checked(number(above=0, phrase="positive"), 1e-4)
    weight_decay: float = checked(number(at_least=0, phrase="non-negative"), 1e-5)
    schedule: str = checked(one_of(*SCHEDULES), "constant")
    warmup_steps: int = checked(at_least(0), 0)

    def __post_init__(self) -> None:
        validate(self)

    def lr_at(self, step: int, steps: int) -> float:
        """The learning rate of update `step` (0-based) of a run of `steps` updates."""
        warmup = min(1.0, (step + 1) / self.warmup_steps) if self.warmup_steps else 1.0
        if self.schedule == "constant":
            return self.lr * warmup
        progress = (step - self.warmup_steps) / max(1, steps - self.warmup_steps)
        return self.lr * warmup * 0.5 * (1 + math.cos(math.pi * min(1.0, max(0.0, progress))))


@dataclass(frozen=True)
class TrainConfig:
    """Everything a training run depends on; saved resolved in the run folder."""

    objective: str = checked(TEXT, "vava")
    # options of the objective's own config (checked by its config class)
    loss: dict[str, Any] = checked(instance(dict, "a mapping"), factory=dict)
    steps: int = checked(at_least(1), 1000)
    seed: int = checked(SEED, 0)
    checkpoint_every: int = checked(at_least(1), 500)
    log_every: int = checked(at_least(1), 10)
    eval_every: int = checked(at_least(0), 0)  # score the embedder on the val split every N steps (0: never)
    eval_metric: str = checked(TEXT, "classification")  # the score best.pt is kept by (checked by the evaluator)
    amp: bool = checked(FLAG, True)  # bf16 autocast on GPU (the alignment losses compute in float32 inside)
    tensorboard: bool = checked(FLAG, False)
    data: DataConfig = checked(instance(DataConfig, "a DataConfig"), factory=DataConfig)
    model: EmbedderConfig = checked(instance(EmbedderConfig, "an EmbedderConfig"), factory=EmbedderConfig)
    optim: OptimConfig = checked(instance(OptimConfig, "an OptimConfig"), factory=OptimConfig)

    def __post_init__(self) -> None:
        validate(self)


def load_config(preset: str | None, overrides: dict[str, Any]) -> TrainConfig:
    """Defaults <- preset YAML <- overrides, validated."""
    values = read_yaml_mapping(resolve_preset(preset)) if preset is not None else {}
    return from_dict(TrainConfig, merge(values, overrides))
