"""A tiny training config for tests that train on the toy feature set."""
from __future__ import annotations

from vava.core.config import parse_overrides
from vava.stages.train.config import load_config

TINY = ["model.conv_channels=16", "model.fc_channels=16", "model.embedding_dim=8", "data.frames_per_video=8",
        "data.batch_pairs=2", "log_every=1"]


def config(*extra: str):
    return load_config(None, parse_overrides([*TINY, *extra]))
