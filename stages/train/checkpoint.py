"""Atomic, resumable checkpoints of a training run."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from pipeline.errors import VavaError

LAST = "last.pt"


def save_checkpoint(folder: Path, step: int, state: dict[str, Any]) -> Path:
    """Write `step_<N>.pt` and `last.pt` atomically (temporary file, then rename)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"step_{step:07d}.pt"
    tmp = folder / f".{path.name}.{os.getpid()}.tmp"
    torch.save({**state, "step": step}, tmp)
    os.replace(tmp, path)
    tmp_last = folder / f".{LAST}.{os.getpid()}.tmp"
    os.link(path, tmp_last)  # last.pt: a second name for the same bytes, swapped in atomically
    os.replace(tmp_last, folder / LAST)
    return path


def load_checkpoint(path: Path) -> dict[str, Any]:
    if path.is_dir():
        path = path / LAST
    if not path.is_file():
        raise VavaError(f"{path}: no checkpoint (train first, or check the run folder)")
    try:
        return torch.load(path, map_location="cpu", weights_only=False)
    except Exception as err:  # a truncated or foreign file: any torch error means the same to a user
        raise VavaError(f"{path}: not a readable checkpoint ({str(err).splitlines()[0]})") from None
