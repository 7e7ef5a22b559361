"""`vava sweep`: many training runs (objectives, ablations) on one extracted feature set.

A plan (YAML, see configs/sweeps/) names runs, each an objective with config overrides or an
`identity` (no training) row, and the tables to build from their reports. Runs whose report
already exists are reused, so an interrupted sweep picks up where it stopped.
"""
from __future__ import annotations

import json
import shlex
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from cache.store import FeatureSet
from pipeline.config import load_config, merge, nest, resolve_preset
from pipeline.errors import VavaError
from stages.embed.run import embed
from stages.evaluate import tables
from stages.evaluate.report import REPORT_JSON, compare_reports, load_report
from stages.evaluate.run import evaluate_run
from stages.train.checkpoint import LAST, load_checkpoint
from stages.train.loop import train

_RUN_KEYS = {"objective", "set", "identity"}
TIME_NAME = "sweep_time.json"  # seconds a run took, kept beside its report


@dataclass(frozen=True)
class SweepRun:
    name: str
    objective: str | None = None
    overrides: dict[str, Any] = field(default_factory=dict)
    identity: bool = False


@dataclass(frozen=True)
class SweepPlan:
    base: str | None
    runs: list[SweepRun]
    tables: dict[str, list[str]]


def load_plan(name_or_path: str) -> SweepPlan:
    """A plan file, or the name of one in configs/sweeps/ (e.g. `ablations`)."""
    path = Path(name_or_path)
    if not path.is_file():
        path = resolve_preset(f"sweeps/{name_or_path}")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise VavaError(f"{path}: not valid YAML ({str(err).splitlines()[0]})") from None
    runs = []
    for name, spec in (data.get("runs") or {}).items():
        spec = spec or {}
        unknown = sorted(set(spec) - _RUN_KEYS)
        if unknown:
            raise VavaError(f"{path}: run {name!r}: unknown key(s) {', '.join(unknown)} (known: objective, set, identity)")
        if bool(spec.get("identity")) == bool(spec.get("objective")):
            raise VavaError(f"{path}: run {name!r}: give exactly one of objective, identity")
        runs.append(SweepRun(str(name), spec.get("objective"), dict(spec.get("set") or {}), bool(spec.get("identity"))))
    if not runs:
        raise VavaError(f"{path}: no runs")
    tables = {str(title): [str(n) for n in names] for title, names in (data.get("tables") or {}).items()}
    names = {run.name for run in runs}
    for title, members in tables.items():
        missing = [n for n in members if n not in names]
        if missing:
            raise VavaError(f"{path}: table {title!r} names unknown run(s) {', '.join(missing)}")
    return SweepPlan(data.get("base"), runs, tables or {"all runs": [run.name for run in runs]})


def run_sweep(features: str | Path, out: str | Path, plan: SweepPlan, *, steps: int | None = None,
              overrides: dict[str, Any] | None = None, device: str = "auto",
              log: Callable[[str], None] = print) -> tuple[str, dict[str, str]]:
    """Train, embed and evaluate every run of `plan`; return (results markdown, failures by run)."""
    out = Path(out)
    fingerprint = FeatureSet.open(features).fingerprint
    failed: dict[str, str] = {}
    for index, run in enumerate(plan.runs, start=1):
        run_dir = out / run.name
        if (run_dir / REPORT_JSON).is_file():
            reused = load_report(run_dir).get("attrs", {}).get("fingerprint")
            if reused == fingerprint:
                log(f"[{index}/{len(plan.runs)}] {run.name}: report exists, reused")
            else:
                failed[run.name] = f"{run_dir} holds a run on feature set {reused}, not {fingerprint}; use another --out"
                log(f"    failed: {failed[run.name]}")
            continue
        log(f"[{index}/{len(plan.runs)}] {run.name}: {'identity' if run.identity else run.objective} "
            f"{' '.join(f'{k}={v}' for k, v in run.overrides.items())}")
        began = time.perf_counter()
        try:
            _train_and_embed(features, run_dir, run, plan.base, steps, overrides or {}, device)
            evaluate_run(run_dir, plots=False)
        except VavaError as err:
            failed[run.name] = str(err)
            log(f"    failed: {err}")
            continue
        seconds = time.perf_counter() - began
        (run_dir / TIME_NAME).write_text(json.dumps({"seconds": seconds}) + "\n")
        log(f"    done in {seconds:.0f} s")
    return _results(out, plan, failed), failed


def _train_and_embed(features: str | Path, run_dir: Path, run: SweepRun, base: str | None, steps: int | None,
                     overrides: dict[str, Any], device: str) -> None:
    if run.identity:
        embed(run_dir, features, identity=True, device=device, progress=False)
        return
    direct = {"objective": run.objective, **({"steps": steps} if steps else {})}
    config = load_config(base, merge(merge(overrides, nest(run.overrides)), direct))
    resume = (run_dir / "checkpoints" / LAST).is_file()
    if not resume or _checkpoint_step(run_dir) < config.steps:
        train(features, run_dir, config, device=device, resume=resume, progress=False)
    embed(run_dir, device=device, progress=False)


def _checkpoint_step(run_dir: Path) -> int:
    return int(load_checkpoint(run_dir / "checkpoints" / LAST)["step"])


def _results(out: Path, plan: SweepPlan, failed: dict[str, str]) -> str:
    """Markdown: one comparison table per plan table, then timings and failures."""
    parts = [f"Command: `{' '.join(shlex.quote(a) for a in ['vava', *sys.argv[1:]])}`\n"]
    for number, (title, names) in enumerate(plan.tables.items()):
        reports = [load_report(out / n) for n in names if (out / n / REPORT_JSON).is_file()]
        parts.append(f"## {title}\n\n{compare_reports(reports) if reports else '(no finished run)'}\n")
        if number == 0 and reports:  # the main comparison, per action as well
            parts.append(f"### {title}: per action (as Table 5)\n\n{tables.markdown(*tables.per_action_comparison(reports))}\n")
    timed = {run.name: json.loads((out / run.name / TIME_NAME).read_text())["seconds"]
             for run in plan.runs if (out / run.name / TIME_NAME).is_file()}
    if timed:
        rows = "\n".join(f"| {name} | {s:.0f} |" for name, s in timed.items())
        parts.append(f"## Wall time per run (train + embed + evaluate)\n\n| run | seconds |\n| --- | --- |\n{rows}\n"
                     f"| total | {sum(timed.values()):.0f} |\n")
    if failed:
        parts.append("## Failed runs\n\n" + "\n".join(f"- {name}: {reason}" for name, reason in failed.items()) + "\n")
    return "\n".join(parts)
