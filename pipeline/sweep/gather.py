"""`vava gather`: one set of sweep tables from the run records (`RUN/sweep_record.json`) found under several
folders: seeds built on other machines, parts of a long sweep built in other sittings.

Records of runs the plan does not name are left out. Every other record must be the only one of its run and
seed, come from the same feature set as the others, and have the settings of its run's records in the other
seeds (its sweep key, the seed aside): a table never mixes what a sweep would not.
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

from vava.core.errors import VavaError
from vava.pipeline.sweep.plan import SEED_FOLDER, SweepPlan, SweepRun
from vava.pipeline.sweep.record import RunRecord, find_records, load_record

_ABSENT = object()  # a key one sweep key has and the other lacks


class Gathered(NamedTuple):
    runs: dict[str, list[RunRecord | None]]  # each of the plan's runs with a record: its record in every seed or None
    seeds: list[int | None]                  # in order
    missing: list[str]                       # the plan's runs (NAME, or seed-S/NAME) without a record


def gather_records(folders: Sequence[Path], plan: SweepPlan) -> Gathered:
    """The records of the plan's runs under `folders` (a folder given twice, or inside another, is searched
    once), checked to make one sweep."""
    runs_by_name = {run.name: run for run in plan.runs}
    found: dict[tuple[int | None, str], tuple[Path, RunRecord]] = {}
    for path in dict.fromkeys(p.resolve() for folder in folders for p in find_records(folder)):
        record = load_record(path)
        if record.name not in runs_by_name:
            continue
        if (record.seed, record.name) in found:
            other = found[(record.seed, record.name)][0]
            raise VavaError(f"{other} and {path}: two records of run {record.name}, seed {record.seed}; "
                            f"gather one of them")
        _check_run(path, record, runs_by_name[record.name])
        found[(record.seed, record.name)] = path, record
    if not found:
        raise VavaError(f"no record of a run of the plan under {', '.join(map(str, folders))} "
                        f"(records are the sweep_record.json files that vava sweep writes into each run folder)")
    _check_one_sweep(list(found.values()))
    seeds = sorted({seed for seed, _ in found}, key=lambda seed: -1 if seed is None else seed)
    runs = {run.name: [found.get((seed, run.name), (None, None))[1] for seed in seeds] for run in plan.runs}
    missing = [run.name if seed is None else f"{SEED_FOLDER.format(seed)}/{run.name}"
               for run in plan.runs for seed in seeds if (seed, run.name) not in found]
    return Gathered({name: records for name, records in runs.items() if any(records)}, seeds, missing)


def _check_run(path: Path, record: RunRecord, run: SweepRun) -> None:
    """Refuse a record that is not of the plan's run of its name (another objective or reference kind), or
    whose seed is not its config's."""
    config = record.key.get("config")
    if run.identity is not None:
        if config is not None or record.key.get("identity") != run.identity:
            raise VavaError(f"{path}: run {run.name} of the plan is the reference row {run.identity}, this record "
                            f"is not")
        return
    if config is None or config.get("objective") != run.objective:
        raise VavaError(f"{path}: run {run.name} of the plan trains {run.objective}, this record's run does not")
    if record.seed is not None and config.get("seed") != record.seed:
        raise VavaError(f"{path}: its seed {record.seed} is not its config's seed {config.get('seed')!r}")


def _check_one_sweep(found: list[tuple[Path, RunRecord]]) -> None:
    """Refuse records of several feature sets, seeded beside unseeded ones, or a run's records whose settings
    differ from seed to seed."""
    first_path, first = found[0]
    for path, record in found:
        if record.key["features"] != first.key["features"]:
            raise VavaError(f"{path} is a run on feature set {record.key['features']}, {first_path} on "
                            f"{first.key['features']}: gather the records of one feature set")
        if (record.seed is None) != (first.seed is None):
            raise VavaError(f"{path} and {first_path}: one is a run of a sweep with --seeds, the other not")
    settings: dict[str, tuple[Path, dict[str, Any]]] = {}
    for path, record in found:
        key = _without_seed(record.key)
        other_path, other = settings.setdefault(record.name, (path, key))
        if key != other:
            raise VavaError(f"{other_path} and {path}: run {record.name} was built with other settings "
                            f"(their sweep keys differ in {', '.join(_differences(key, other))})")


def _differences(first: Any, second: Any, where: str = "") -> list[str]:
    """The dotted keys at which two sweep keys differ."""
    if not (isinstance(first, dict) and isinstance(second, dict)):
        return [] if first == second else [where]
    return [found for k in sorted({*first, *second}, key=str)
            for found in _differences(first.get(k, _ABSENT), second.get(k, _ABSENT), f"{where}.{k}".lstrip("."))]


def _without_seed(key: dict[str, Any]) -> dict[str, Any]:
    """A sweep key without the config's seed (the one setting a run's seeds differ in)."""
    config = key.get("config")
    return {**key, "config": None if config is None else {k: v for k, v in config.items() if k != "seed"}}
