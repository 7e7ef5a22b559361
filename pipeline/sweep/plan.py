"""A sweep's plan (a YAML file, see configs/sweeps/) and its output folder's own names.

A plan names runs, each an objective with config overrides or an `identity` (no training) reference
row: `true` (pooled backbone features) or an identity kind (`vava.core.embeddings_file.IDENTITY_KINDS`),
the tables to build from their reports, and the pairs of runs to compare seed by seed (`differences`).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vava.core.config import nest, read_yaml_mapping, resolve_preset
from vava.core.embeddings_file import IDENTITY_KINDS
from vava.core.errors import ConfigError, VavaError
from vava.core.files import check_plain_name
from vava.stages.train.config import MAX_SEED

# Names in the sweep's folder OUT (those it writes into each run folder are `vava.core.run_folder`'s); a run
# may not take one of them as its name.
RESULTS_NAME = "results.md"
STALE_NAME = "stale"           # runs made with other settings are moved here
LOSS_CURVES_NAME = "loss_curves.png"
SEED_FOLDER = "seed-{}"
RESERVED_NAMES = (RESULTS_NAME, STALE_NAME, LOSS_CURVES_NAME)
_PLAN_KEYS = ("base", "runs", "tables", "differences")
_RUN_KEYS = ("objective", "set", "identity")


@dataclass(frozen=True)
class SweepRun:
    name: str
    objective: str | None = None
    overrides: dict[str, Any] = field(default_factory=dict)
    identity: str | None = None  # the identity kind of a reference row (no training)


@dataclass(frozen=True)
class SweepPlan:
    base: str | None
    runs: list[SweepRun]
    tables: dict[str, list[str]]
    differences: dict[str, list[tuple[str, str]]] = field(default_factory=dict)  # title -> (A, B): A - B per seed


def load_plan(name_or_path: str) -> SweepPlan:
    """A plan file, or the name of one in configs/sweeps/ (e.g. `ablations`), checked for shape."""
    path = resolve_preset(name_or_path, "plan", "sweeps")
    data = read_yaml_mapping(path)
    unknown = sorted(str(key) for key in data if key not in _PLAN_KEYS)
    if unknown:
        raise VavaError(f"{path}: unknown key(s) {', '.join(unknown)} (known: {', '.join(_PLAN_KEYS)})")
    base = data.get("base")
    if base is not None and not isinstance(base, str):
        raise VavaError(f"{path}: base: expected a config preset name or file, got {base!r}")
    runs = [_parse_run(path, name, spec) for name, spec in _mapping(path, "runs", data.get("runs")).items()]
    if not runs:
        raise VavaError(f"{path}: no runs")
    names = [run.name for run in runs]
    tables = _parse_tables(path, _mapping(path, "tables", data.get("tables")), names)
    differences = _parse_differences(path, _mapping(path, "differences", data.get("differences")), names)
    return SweepPlan(base, runs, tables or {"all runs": names}, differences)


def _mapping(path: Path, what: str, value: Any) -> dict:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise VavaError(f"{path}: {what}: expected a mapping, got a {type(value).__name__} ({value!r:.60})")
    return value


def _parse_run(path: Path, name: Any, spec: Any) -> SweepRun:
    check_plain_name(name, f"{path}: run name", reserved=RESERVED_NAMES)  # it becomes a folder of --out
    where = f"{path}: run {name!r}"
    spec = _mapping(path, f"run {name!r}", spec)
    unknown = sorted(str(key) for key in spec if key not in _RUN_KEYS)
    if unknown:
        raise VavaError(f"{where}: unknown key(s) {', '.join(unknown)} (known: {', '.join(_RUN_KEYS)})")
    objective, identity = spec.get("objective"), _identity_kind(where, spec.get("identity", False))
    if objective is not None and not isinstance(objective, str):
        raise VavaError(f"{where}: objective: expected an objective name, got {objective!r}")
    if (identity is None) == (not objective):
        raise VavaError(f"{where}: give exactly one of objective, identity")
    overrides = _mapping(path, f"run {name!r}: set", spec.get("set"))
    try:
        nest(overrides)
    except VavaError as err:
        raise VavaError(f"{where}: set: {err}") from None
    return SweepRun(name, objective, dict(overrides), identity)


def _identity_kind(where: str, value: Any) -> str | None:
    """A run's `identity`: false (a trained run) -> None, true -> "features", or a kind by name."""
    if value is False or value is True:
        return "features" if value else None
    if not isinstance(value, str) or value not in IDENTITY_KINDS:
        raise VavaError(f"{where}: identity: expected true, false or one of {', '.join(IDENTITY_KINDS)}, "
                        f"got {value!r}")
    return value


def _parse_tables(path: Path, tables: dict, names: list[str]) -> dict[str, list[str]]:
    parsed = {}
    for title, members in tables.items():
        if not isinstance(members, list):
            raise VavaError(f"{path}: table {title!r}: expected a list of run names, got a {type(members).__name__}")
        missing = [str(n) for n in members if n not in names]
        if missing:
            raise VavaError(f"{path}: table {title!r} names unknown run(s) {', '.join(missing)}")
        parsed[str(title)] = members
    return parsed


def _parse_differences(path: Path, differences: dict, names: list[str]) -> dict[str, list[tuple[str, str]]]:
    """`differences`: title -> a list of [A, B], two distinct runs of the plan (the table shows A - B)."""
    parsed = {}
    for title, pairs in differences.items():
        where = f"{path}: differences {title!r}"
        if not isinstance(pairs, list) or not pairs:
            raise VavaError(f"{where}: expected a list of [A, B] run-name pairs, got {pairs!r:.60}")
        for pair in pairs:
            if not (isinstance(pair, list) and len(pair) == 2 and pair[0] != pair[1]):
                raise VavaError(f"{where}: expected [A, B], two distinct run names, got {pair!r:.60}")
            missing = [str(n) for n in pair if n not in names]
            if missing:
                raise VavaError(f"{where} names unknown run(s) {', '.join(missing)}")
        parsed[str(title)] = [(a, b) for a, b in pairs]
    return parsed


def parse_seeds(text: str) -> tuple[int, ...]:
    """`--seeds`: comma-separated distinct integers >= 0 (below 2**64, as a config's seed), e.g. "0,1,2"."""
    items = [item.strip() for item in text.split(",")]
    for item in items:
        if not re.fullmatch(r"-?\d+", item):
            raise ConfigError("seeds", f"{item!r:.40} is not an integer (give distinct integers >= 0, e.g. 0,1,2)")
        if item.startswith("-"):
            raise ConfigError("seeds", f"{item:.40} is negative (seeds are integers >= 0)")
        if len(item) > len(str(MAX_SEED)) or int(item) >= MAX_SEED:  # the length first: int() refuses huge texts
            raise ConfigError("seeds", f"{item:.40} is too large (seeds are below 2**64)")
    seeds = tuple(int(item) for item in items)
    repeated = sorted({seed for seed in seeds if seeds.count(seed) > 1})
    if repeated:
        raise ConfigError("seeds", f"{', '.join(map(str, repeated))} given more than once")
    return seeds
