"""Whether a run folder holds the finished run of a sweep's settings: its sweep key and wall time.

Each run folder holds a "sweep key" (`sweep_key.json`: the run's resolved config, the feature set's
fingerprint, the package version and any evaluation options given), written before the run is built,
and `sweep_time.json`, written when it is finished. A finished run whose key matches is reused. When
the key changed, a run whose steps (at a constant learning rate: `resumable_changes`) or evaluation
options alone changed trains on from its last checkpoint (if need be) and is evaluated again; any other
change moves the old run into `OUT/stale/` (never deleted). Folders the sweep did not make are left alone.
"""
from __future__ import annotations

import importlib.metadata
import itertools
import json
from pathlib import Path
from typing import Any

from vava.core.config import to_dict
from vava.core.errors import VavaError
from vava.core.files import read_regular
from vava.core.run_folder import KEY_NAME, TIME_NAME, checkpoint_path, load_checkpoint
from vava.pipeline.sweep.plan import STALE_NAME
from vava.stages.evaluate.report import load_comparable_report
from vava.stages.train.config import TrainConfig
from vava.stages.train.loop import RESUMABLE_CHANGES, resolved, resumable_changes

# Config keys that change no report (scoring during training leaves the last checkpoint as it is): not in the key.
EVAL_KEYS = ("eval_every", "eval_metric")


def sweep_key(config: TrainConfig | None, fingerprint: str, identity: str | None = None,
              evaluation: dict[str, Any] | None = None) -> dict[str, Any]:
    """Everything a run's report depends on: its resolved config (None: a reference row, then its identity
    kind), the feature set, the package version (which fixes the code of the objectives, embedder and probes)
    and the evaluation options given (none: the defaults)."""
    settings = None if config is None else {k: v for k, v in to_dict(resolved(config)).items() if k not in EVAL_KEYS}
    key = {"version": _version(), "features": fingerprint, "config": settings}
    if identity is not None:
        key["identity"] = identity
    if evaluation:
        key["evaluation"] = evaluation
    return json.loads(json.dumps(key))  # as it reads back from sweep_key.json


def _version() -> str:
    try:
        return importlib.metadata.version("vava-align")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def prepare(run_dir: Path, key: dict[str, Any], out: Path, replace_other_features: bool) -> tuple[bool, str]:
    """(whether run_dir holds the finished run of `key`, what was done to make it ready otherwise)."""
    saved = saved_key(run_dir)
    if saved is None:
        return False, ""
    if saved.get("features", key["features"]) != key["features"]:
        if not replace_other_features:
            raise VavaError(f"{run_dir} holds a run on feature set {saved['features']}, not {key['features']}; "
                            f"use another --out")
        moved = _move_aside(run_dir, out / STALE_NAME)
        return False, f"the feature set changed since this run was made: the old run was moved to {moved}"
    if saved == key:
        return finished(run_dir), ""
    if _trains_on(saved, key, run_dir):
        (run_dir / TIME_NAME).unlink(missing_ok=True)  # unfinished until rebuilt for the new key
        changed = [k for k in sorted(RESUMABLE_CHANGES) if saved["config"].get(k) != key["config"].get(k)]
        evaluation = ["evaluation options"] if saved.get("evaluation") != key.get("evaluation") else []
        todo = "training on from the last checkpoint" if changed else "evaluating again"
        return False, f"{', '.join(changed + evaluation)} changed: {todo}"
    moved = _move_aside(run_dir, out / STALE_NAME)
    return False, f"settings changed since this run was made: the old run was moved to {moved}"


def recorded_seconds(run_dir: Path) -> float | None:
    """The wall time recorded in run_dir's sweep_time.json; None when missing or unreadable."""
    try:
        seconds = json.loads(read_regular(run_dir / TIME_NAME))["seconds"]
    except (OSError, ValueError, KeyError, TypeError, VavaError):
        return None
    return float(seconds) if isinstance(seconds, (int, float)) and not isinstance(seconds, bool) else None


def finished(run_dir: Path) -> bool:
    """Whether run_dir holds a finished run: a readable wall time and report (a damaged one is rebuilt)."""
    try:
        load_comparable_report(run_dir)
    except VavaError:
        return False
    return recorded_seconds(run_dir) is not None


def saved_key(run_dir: Path) -> dict[str, Any] | None:
    """The sweep key of run_dir ({} when unreadable, or made by a sweep before keys); None when
    there is nothing there yet. A folder the sweep did not make is refused, never touched."""
    if not run_dir.exists() and not run_dir.is_symlink():
        return None
    if run_dir.is_dir() and not run_dir.is_symlink():
        if (run_dir / KEY_NAME).is_file():
            try:
                saved = json.loads(read_regular(run_dir / KEY_NAME))
            except (OSError, ValueError, VavaError):
                return {}
            return saved if isinstance(saved, dict) else {}
        if (run_dir / TIME_NAME).is_file():
            return {}
        if not any(run_dir.iterdir()):
            return None
    raise VavaError(f"{run_dir}: exists but was not made by vava sweep (no {KEY_NAME}); it was left as it is: "
                    f"move it away or use another --out")


def _trains_on(saved: dict[str, Any], key: dict[str, Any], run_dir: Path) -> bool:
    """Whether the saved run becomes the run of `key` by training on and evaluating again: only steps, logging
    or the evaluation options changed and its last checkpoint is not past the new steps (`train(resume=True)`
    allows just that)."""
    old, new = saved.get("config"), key["config"]
    if old is None or new is None or _beside_config(saved) != _beside_config(key):
        return False
    allowed = resumable_changes(old)
    if {k: v for k, v in old.items() if k not in allowed} != {k: v for k, v in new.items() if k not in allowed}:
        return False
    return not checkpoint_path(run_dir).is_file() or checkpoint_step(run_dir) <= new["steps"]


def _beside_config(key: dict[str, Any]) -> dict[str, Any]:
    """A sweep key without what training on and evaluating again can change (the config, the evaluation)."""
    return {k: v for k, v in key.items() if k not in ("config", "evaluation")}


def _move_aside(run_dir: Path, stale: Path) -> Path:
    """Rename run_dir to stale/NAME.N (the first N free) and return the new path."""
    stale.mkdir(parents=True, exist_ok=True)
    target = next(path for n in itertools.count(1)
                  if not (path := stale / f"{run_dir.name}.{n}").exists() and not path.is_symlink())
    run_dir.rename(target)
    return target


def checkpoint_step(run_dir: Path) -> int:
    return int(load_checkpoint(checkpoint_path(run_dir))["step"])


def run_steps(run_dir: Path | None) -> int | None:
    """The steps a trained run was built for (from its sweep key), None for a reference row or without a key."""
    config = (saved_key(run_dir) or {}).get("config") if run_dir is not None else None
    steps = config.get("steps") if isinstance(config, dict) else None
    return steps if isinstance(steps, int) else None
