"""Tiny training configs for tests that train on the toy feature set."""
from __future__ import annotations

from vava.core.config import parse_overrides
from vava.stages.train.config import load_config

TINY = ["model.conv_channels=16", "model.fc_channels=16", "model.embedding_dim=8", "data.frames_per_video=8",
        "data.batch_pairs=2", "log_every=1"]


def config(*extra: str):
    return load_config(None, parse_overrides([*TINY, *extra]))


RUN_TINY = [*TINY, "checkpoint_every=2"]  # the run-folder tests resume from, and damage, these checkpoints


def run_config(steps: int):
    return load_config(None, parse_overrides([*RUN_TINY, f"steps={steps}"]))


# Smaller still, as nested overrides (sweeps and the training guards pass a dict).
TINY_OVERRIDES = {"model": {"conv_channels": 8, "fc_channels": 8, "embedding_dim": 8},
                  "data": {"frames_per_video": 6, "batch_pairs": 1}}
