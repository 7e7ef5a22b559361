"""Checkpoints of a training run: atomic, resumable, and loaded without running any code.

A checkpoint holds tensors, numbers, strings, lists and dicts only (the config as JSON text), so
it loads with `torch.load(weights_only=True)`: a file whose pickle asks for anything else (a crafted
`last.pt` calling `os.system`) is refused before any of it runs. What loads is then checked key by
key, so a damaged or foreign file gives one line naming it, never a traceback.
"""
from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import pickle
import re
import warnings
from pathlib import Path
from typing import Any

import torch

from pipeline.config import TrainConfig, from_dict, to_dict
from pipeline.errors import VavaError
from pipeline.files import atomic_path, atomic_write

LAST = "last.pt"
_STEP_FILE = re.compile(r"step_(\d+)\.pt")
# Every key of a checkpoint and its type; `config` is JSON text (a dict in checkpoints older than that).
_FIELDS: dict[str, type | tuple[type, ...]] = {
    "step": int, "config": (str, dict), "features": str, "fingerprint": str, "in_channels": int,
    "embedder": dict, "objective": dict, "optimizer": dict, "rng": torch.Tensor,
}
# How torch's restricted unpickler names a callable (or class) it refused to load.
_REFUSED_GLOBAL = re.compile(r"GLOBAL (\S+)")
_log = logging.getLogger(__name__)


def save_checkpoint(folder: Path, step: int, config: TrainConfig, state: dict[str, Any]) -> Path:
    """Write `step_<N>.pt`, then `last.pt` as a second name of the same bytes, each by create-and-rename.

    `state` holds the other keys of `_FIELDS`; a full disk is a one-line `VavaError` that leaves
    the previous checkpoints as they were.
    """
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"step_{step:07d}.pt"
    buffer = io.BytesIO()  # serialised in memory, so a failed write is an OSError of ours, not torch's
    torch.save({**state, "step": step, "config": json.dumps(to_dict(config))}, buffer)
    atomic_write(path, buffer.getvalue())
    with atomic_path(folder / LAST) as tmp:
        tmp.unlink()  # last.pt: a second name for the step's bytes, swapped in atomically
        os.link(path, tmp)
    return path


def load_checkpoint(path: Path) -> dict[str, Any]:
    """The checkpoint at `path` (a file, or a run's checkpoints folder for its `last.pt`), checked.

    The result has the keys of `_FIELDS`, with `config` a `TrainConfig`, plus `path`: the file read.
    An unreadable `last.pt` falls back, with a warning, to the newest readable `step_<N>.pt`.
    """
    path = Path(path)
    if path.is_dir():
        path = path / LAST
    if not path.is_file():
        raise VavaError(f"{path}: no checkpoint (train first, or check the run folder)")
    try:
        return _read(path)
    except VavaError as err:
        fallback = _newest_readable_step(path.parent) if path.name == LAST else None
        if fallback is None:
            raise
        _log.warning("warning: %s; using %s instead", err, fallback["path"])
        return fallback


def load_into(target: torch.nn.Module | torch.optim.Optimizer, state: dict[str, Any], checkpoint: Path,
              key: str) -> None:
    """`target.load_state_dict(state)`; a state that does not fit is one line naming the checkpoint."""
    try:
        target.load_state_dict(state)
    except (RuntimeError, ValueError, KeyError, TypeError) as err:
        detail = " ".join(str(err).split())
        raise VavaError(f"{checkpoint}: its {key} does not fit the model of its config ({detail[:300]})") from None


def _newest_readable_step(folder: Path) -> dict[str, Any] | None:
    numbered = sorted(((int(m[1]), p) for p in folder.glob("step_*.pt") if (m := _STEP_FILE.fullmatch(p.name))),
                      reverse=True)
    for _, candidate in numbered:
        with contextlib.suppress(VavaError):
            return _read(candidate)
    return None


def _read(path: Path) -> dict[str, Any]:
    try:
        with warnings.catch_warnings():  # torch warns about a plain pickle's protocol before refusing it
            warnings.simplefilter("ignore", UserWarning)
            state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        if refused := _REFUSED_GLOBAL.search(str(err)):
            raise VavaError(f"{path}: refused: it asks to load {refused[1]}, which is neither a tensor nor a plain "
                            "value (a crafted or foreign file; nothing in it was run)") from None
        raise VavaError(f"{path}: not a readable checkpoint (damaged or not a torch file)") from None
    except Exception as err:  # a truncated or foreign file: any torch error means the same to a user
        reason = (str(err).splitlines() or [""])[0].split(". ")[0]  # torch appends paragraphs of advice
        raise VavaError(f"{path}: not a readable checkpoint (damaged or not a torch file; "
                        f"{type(err).__name__}: {reason})") from None
    return _checked(path, state)


def _checked(path: Path, state: object) -> dict[str, Any]:
    """`state` with its types checked and its config parsed; `VavaError` naming `path` otherwise."""
    if not isinstance(state, dict):
        raise VavaError(f"{path}: not a vava checkpoint (holds a {type(state).__name__}, not a dict)")
    missing = [key for key in _FIELDS if key not in state]
    if missing:
        raise VavaError(f"{path}: not a vava checkpoint (no {', '.join(missing)})")
    for key, kind in _FIELDS.items():
        if not isinstance(state[key], kind) or isinstance(state[key], bool):
            raise VavaError(f"{path}: {key} is a {type(state[key]).__name__}, not a valid value")
    for key in ("embedder", "objective"):
        if not all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state[key].items()):
            raise VavaError(f"{path}: {key} is not a state dict of named tensors")
    rng, expected = state["rng"], torch.get_rng_state()
    if state["step"] < 0 or state["in_channels"] < 1 or rng.dtype != expected.dtype or rng.shape != expected.shape:
        raise VavaError(f"{path}: step {state['step']}, in_channels {state['in_channels']} or the rng state "
                        "is out of range")
    try:
        raw = state["config"]
        config = from_dict(TrainConfig, json.loads(raw) if isinstance(raw, str) else raw)
    except (ValueError, VavaError) as err:
        raise VavaError(f"{path}: config: {err}") from None
    return {**state, "config": config, "path": path}
