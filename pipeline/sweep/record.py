"""A finished run's record (`RUN/sweep_record.json`): every number a sweep's tables read of one run, in one
small JSON file.

Records let runs built in several places or sittings (seeds on other machines, sessions whose run folders
are gone) make one set of tables (`vava gather`) without their checkpoints and embeddings. A record holds
the run's name and seed, its sweep key, its report, its wall time, what the plateau tests read (c of its
whole training log and its last tenth's fall in standard errors, the val classification of its checkpoint at
half its budget), its loss at no more than MAX_CURVE_POINTS of its logged steps (the loss-curve plot) and the
files its diagnostics wrote.
"""
from __future__ import annotations

import json
import math
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from vava.core.errors import VavaError
from vava.core.files import atomic_write, check_plain_name, read_regular
from vava.core.report_file import finite_json
from vava.core.validation import is_integer, is_real
from vava.pipeline.sweep.plan import STALE_NAME
from vava.stages.evaluate.report import check_comparable_report
from vava.stages.train.config import MAX_SEED

RECORD_NAME = "sweep_record.json"
RECORD_FORMAT = 2  # format 1 had no loss_fall_se; it is still read (as None)
MAX_CURVE_POINTS = 256
_FIELDS = ("format", "name", "seed", "key", "report", "seconds", "convergence", "midpoint", "loss", "diagnostics",
           "loss_fall_se")
_FORMATS = {1: _FIELDS[:-1], RECORD_FORMAT: _FIELDS}


@dataclass(frozen=True)
class RunRecord:
    """One finished run of a sweep, as its tables read it. `loss` is (logged steps, loss) at no more than
    MAX_CURVE_POINTS steps; `diagnostics` maps each diagnostic's file name to what it wrote."""

    name: str
    seed: int | None
    key: dict[str, Any]
    report: dict[str, Any]
    seconds: float | None = None
    convergence: float | None = None
    midpoint: float | None = None
    loss: tuple[list[int], list[float]] | None = None
    diagnostics: dict[str, dict[str, Any]] = field(default_factory=dict)
    loss_fall_se: float | None = None  # the last tenth's fall of loss in standard errors (`seeds.last_tenth_...`)

    @property
    def trained(self) -> bool:
        """Whether the run trained (a reference row's key has no config)."""
        return self.key.get("config") is not None

    def as_json(self) -> dict[str, Any]:
        loss = None if self.loss is None else {"steps": self.loss[0], "loss": self.loss[1]}
        return {"format": RECORD_FORMAT, "name": self.name, "seed": self.seed, "key": self.key,
                "report": self.report, "seconds": self.seconds, "convergence": self.convergence,
                "midpoint": self.midpoint, "loss": loss, "diagnostics": self.diagnostics,
                "loss_fall_se": self.loss_fall_se}


def thinned_curve(steps: np.ndarray, values: np.ndarray) -> tuple[list[int], list[float]]:
    """At most MAX_CURVE_POINTS evenly spread points of a logged curve, its first and last kept (runs with
    the same logged steps keep the same steps, so their curves still average)."""
    keep = np.unique(np.linspace(0, len(steps) - 1, min(len(steps), MAX_CURVE_POINTS)).round().astype(int))
    return [int(s) for s in np.asarray(steps)[keep]], [float(v) for v in np.asarray(values)[keep]]


def write_record(run_dir: Path, record: RunRecord) -> Path:
    """RUN/sweep_record.json (strict JSON: a value that is not finite is written as null)."""
    return atomic_write(run_dir / RECORD_NAME, json.dumps(finite_json(record.as_json()), indent=1) + "\n")


def load_record(path: Path) -> RunRecord:
    """A record file, checked field by field (records travel between machines: untrusted input)."""
    try:
        data = json.loads(read_regular(path))
    except (OSError, ValueError) as error:
        raise VavaError(f"{path}: not a readable sweep record ({error})") from None
    except RecursionError:
        raise VavaError(f"{path}: not a readable sweep record (nested too deeply)") from None
    try:
        _check_numbers(data)
        return _parsed(data)
    except (VavaError, KeyError, TypeError, ValueError, ArithmeticError) as error:
        raise VavaError(f"{path}: not a vava sweep record ({error})") from None
    except RecursionError:
        raise VavaError(f"{path}: not a vava sweep record (nested too deeply)") from None


def find_records(folder: Path) -> list[Path]:
    """Every RECORD_NAME file under `folder`, at any depth, in sorted order. Links are not followed, and the
    runs a sweep moved aside (`stale/`, a name no run may take) are left out."""
    def unreadable(error: OSError) -> None:
        raise VavaError(f"{error.filename}: cannot read this folder ({error.strerror or error})")

    found = []
    try:
        for root, dirs, files in os.walk(folder, onerror=unreadable, followlinks=False):
            dirs[:] = sorted(d for d in dirs if d != STALE_NAME)
            if RECORD_NAME in files and not (Path(root) / RECORD_NAME).is_symlink():
                found.append(Path(root) / RECORD_NAME)
    except RecursionError:
        raise VavaError(f"{folder}: its folders are nested too deeply to search") from None
    return found


def _check_numbers(value: object) -> None:
    """Every number in a record is finite, as `write_record` writes it (an integer too large for a float is
    not)."""
    if isinstance(value, dict):
        for item in value.values():
            _check_numbers(item)
    elif isinstance(value, list):
        for item in value:
            _check_numbers(item)
    elif isinstance(value, float) and not math.isfinite(value):
        raise VavaError(f"{value!r} is not a finite number")
    elif isinstance(value, int) and not isinstance(value, bool) and abs(value) > sys.float_info.max:
        raise VavaError(f"an integer of {len(str(abs(value)))} digits is not a finite number")


def _parsed(data: object) -> RunRecord:
    if not isinstance(data, dict):
        raise VavaError(f"expected a JSON object, got {type(data).__name__}")
    fields = _FORMATS.get(data.get("format")) if is_integer(data.get("format")) else None
    if fields is None:
        raise VavaError(f"format {data.get('format')!r}, this version reads formats "
                        f"{', '.join(map(str, _FORMATS))}")
    if sorted(data) != sorted(fields):
        raise VavaError(f"expected the fields {', '.join(fields)}")
    name = check_plain_name(data["name"], "name")
    seed = data["seed"]
    if seed is not None and not (is_integer(seed) and 0 <= seed <= MAX_SEED):
        raise VavaError(f"seed: expected null or an integer in [0, {MAX_SEED}], got {seed!r}")
    key = data["key"]
    if not isinstance(key, dict) or not isinstance(key.get("features"), str) \
            or not isinstance(key.get("config"), (dict, type(None))):
        raise VavaError("key: expected a sweep key (features, config)")
    report = check_comparable_report(data["report"], "report")
    numbers = {field_name: _optional_number(data[field_name], field_name)
               for field_name in ("seconds", "convergence", "midpoint", "loss_fall_se") if field_name in data}
    if numbers["seconds"] is not None and numbers["seconds"] < 0:
        raise VavaError(f"seconds: expected null or a number >= 0, got {numbers['seconds']!r}")
    diagnostics = data["diagnostics"]
    if not isinstance(diagnostics, dict) or not all(isinstance(v, dict) for v in diagnostics.values()):
        raise VavaError("diagnostics: expected an object of objects")
    return RunRecord(name, seed, key, report, loss=_curve(data["loss"]), diagnostics=diagnostics, **numbers)


def _optional_number(value: object, name: str) -> float | None:
    if value is not None and not is_real(value):
        raise VavaError(f"{name}: expected null or a number, got {value!r}")
    return None if value is None else float(value)


def _curve(value: object) -> tuple[list[int], list[float]] | None:
    if value is None:
        return None
    if not isinstance(value, dict) or sorted(value) != ["loss", "steps"]:
        raise VavaError("loss: expected null or an object with steps and loss")
    steps, loss = value["steps"], value["loss"]
    if not (isinstance(steps, list) and isinstance(loss, list) and len(steps) == len(loss)
            and all(is_integer(s) for s in steps) and all(is_real(v) for v in loss)):
        raise VavaError("loss: steps (integers) and loss (numbers) must be lists of one length")
    if any(b <= a for a, b in zip(steps, steps[1:])):
        raise VavaError("loss: steps must increase")
    return [int(s) for s in steps], [float(v) for v in loss]
