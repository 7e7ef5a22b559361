"""`vava sweep`: many training runs (objectives, ablations) on one extracted feature set.

A plan (YAML, see configs/sweeps/) names runs, each an objective with config overrides or an
`identity` (no training) reference row: `true` (pooled backbone features) or an identity kind
(`vava.core.embeddings_file.IDENTITY_KINDS`), and the tables to build from their reports.

Each run folder holds a "sweep key" (`sweep_key.json`: the run's resolved config, the feature
set's fingerprint, the package version and any evaluation options given), written before the run
is built, and `sweep_time.json`, written when it is finished. A finished run whose key matches is
reused, so an interrupted sweep picks up where it stopped. When the key changed, a run whose steps
or evaluation options alone changed trains on from its last checkpoint (if need be) and is
evaluated again; any other change moves the old run into `OUT/stale/` (never deleted) and builds
it afresh. Folders the sweep did not make are left alone.

With seeds, each seed S is such a sweep in `OUT/seed-S/` (every trained run's config has seed S;
identity runs, deterministic, are built in each folder too) and `OUT/results.md` shows every number
as mean ± sd over the seeds. Every sweep writes `OUT/loss_curves.png`: each trained run's loss over
its first logged value (mean over seeds), and each trained run's `plots/loss.png`. Each trained run's
checkpoint at about half its budget is scored on the val split too (`RUN/report-stepN.json`), for the
convergence table's val plateau test.
"""
from __future__ import annotations

import importlib.metadata
import itertools
import json
import re
import shlex
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vava.cache.store import FeatureSet
from vava.core.config import merge, nest, read_yaml_mapping, resolve_preset, to_dict
from vava.core.embeddings_file import IDENTITY_KINDS
from vava.core.errors import ConfigError, VavaError
from vava.core.files import atomic_write, check_plain_name, read_regular
from vava.core.report_file import REPORT_JSON, load_report
from vava.core.run_folder import (
    CHECKPOINTS,
    KEY_NAME,
    LOG_NAME,
    LOSS_PLOT_NAME,
    PLOTS,
    TIME_NAME,
    checkpoint_path,
    checkpoint_tag,
    load_checkpoint,
    saved_steps,
    tagged_name,
)
from vava.pipeline.diagnostics import DIAGNOSTICS, diagnose
from vava.pipeline.val_probes import ValProbes
from vava.stages.embed.run import embed
from vava.stages.evaluate import seeds as over_seeds
from vava.stages.evaluate import tables
from vava.stages.evaluate.plots import plot_loss_curve, plot_relative_losses, read_log
from vava.stages.evaluate.probes import PROBES
from vava.stages.evaluate.probes.base import Report, at, fixed, percent
from vava.stages.evaluate.report import load_comparable_report
from vava.stages.evaluate.run import evaluate_run
from vava.stages.train.config import MAX_SEED, TrainConfig, load_config
from vava.stages.train.loop import RESUMABLE_CHANGES, resolved, train

# Names in the sweep's folder OUT (those it writes into each run folder are `vava.core.run_folder`'s).
RESULTS_NAME = "results.md"
STALE_NAME = "stale"           # runs made with other settings are moved here
LOSS_CURVES_NAME = "loss_curves.png"
# Config keys that change no report (scoring during training leaves the last checkpoint as it is): not in the key.
EVAL_KEYS = ("eval_every", "eval_metric")
SEED_FOLDER = "seed-{}"
RESERVED_NAMES = (RESULTS_NAME, STALE_NAME, LOSS_CURVES_NAME)
_PLAN_KEYS = ("base", "runs", "tables")
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


def load_plan(name_or_path: str) -> SweepPlan:
    """A plan file, or the name of one in configs/sweeps/ (e.g. `ablations`), checked for shape."""
    path = Path(name_or_path)
    if not path.is_file():
        path = resolve_preset(f"sweeps/{name_or_path}")
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
    return SweepPlan(base, runs, tables or {"all runs": names})


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


@dataclass(frozen=True)
class RunOptions:
    """How each run of a sweep is built beside its config: the device, a progress bar with step/total and
    ETA while it trains, and the options of its evaluation (`vava evaluate`'s, e.g. kendall_stride)."""

    device: str = "auto"
    progress: bool = False
    evaluation: dict[str, Any] = field(default_factory=dict)
    replace_other_features: bool = False  # move a run made on another feature set aside instead of failing it


def run_sweep(features: str | Path, out: str | Path, plan: SweepPlan, *, steps: int | None = None,
              overrides: dict[str, Any] | None = None, device: str = "auto", seeds: Sequence[int] | None = None,
              log: Callable[[str], None] = print, progress: bool = False, evaluation: dict[str, Any] | None = None,
              results_name: str = RESULTS_NAME, replace_other_features: bool = False) -> tuple[str, dict[str, str]]:
    """Train, embed and evaluate every run of `plan` in OUT or, with `seeds`, once per seed S in OUT/seed-S
    (which also gets its own table, `results_name`); write OUT/loss_curves.png; return (results markdown,
    failures by run: NAME, or seed-S/NAME).

    `evaluation` holds options of `vava evaluate` for every run (part of each run's sweep key); `progress`
    shows a bar while a run trains. A run that fails, for any reason short of an interrupt, is reported and
    the others go on. A run folder made on another feature set fails its run, unless `replace_other_features`:
    then it is moved to OUT/stale/ like one of other settings (`vava reproduce`, whose extraction options make
    the feature set).
    """
    out, overrides = Path(out), overrides or {}
    options = RunOptions(device, progress, dict(evaluation or {}), replace_other_features)
    fingerprint = FeatureSet.open(features).fingerprint
    load_config(plan.base, merge(overrides, _steps(steps)))  # a bad base or --set stops the sweep before any run
    folders = _folders(out, seeds)
    failed: dict[Path, dict[str, str]] = {}
    for seed, folder in folders.items():
        if seed is not None:
            log(f"seed {seed}: {folder}")
        failed[folder] = _sweep_folder(features, folder, plan, fingerprint, options, log,
                                       lambda run, seed=seed: run_config(run, plan.base, steps, overrides, seed))
        if seed is not None:
            folder.mkdir(parents=True, exist_ok=True)  # even when every run failed before making its folder
            atomic_write(folder / results_name, _results({seed: folder}, plan, failed))
    _write_loss_curves(folders, plan, failed, out / LOSS_CURVES_NAME)
    return _results(folders, plan, failed), _by_name(failed, seeds is not None)


def _folders(out: Path, seeds: Sequence[int] | None) -> dict[int | None, Path]:
    """The sweep folder of each seed (None: no seeds, OUT itself), each checked to be no run folder."""
    if seeds is None:
        return {None: out}
    folders = {seed: out / SEED_FOLDER.format(seed) for seed in seeds}
    for folder in folders.values():
        if folder.is_symlink() or folder.exists() and not folder.is_dir() or (folder / KEY_NAME).exists():
            raise VavaError(f"{folder}: not a seed folder of vava sweep (a link, a file or a run); it was left as "
                            f"it is: move it away or use another --out")
    return folders


def _sweep_folder(features: str | Path, folder: Path, plan: SweepPlan, fingerprint: str, options: RunOptions,
                  log: Callable[[str], None], config_of: Callable[[SweepRun], TrainConfig | None]) -> dict[str, str]:
    """Every run of `plan` in `folder`; return the failures by run name."""
    failed: dict[str, str] = {}
    for index, run in enumerate(plan.runs, start=1):
        try:
            _sweep_run(features, folder, run, f"[{index}/{len(plan.runs)}] {run.name}", config_of(run), fingerprint,
                       options, log)
        except VavaError as err:
            failed[run.name] = str(err)
        except Exception as err:  # a bug met by one run must not cost the others: reported, not raised
            failed[run.name] = f"{type(err).__name__}: {err}"
        if run.name in failed:
            log(f"    failed: {failed[run.name]}")
    return failed


def _by_name(failed: dict[Path, dict[str, str]], seeded: bool) -> dict[str, str]:
    """Failures keyed NAME, or seed-S/NAME with seeds."""
    return {f"{folder.name}/{name}" if seeded else name: reason
            for folder, runs in failed.items() for name, reason in runs.items()}


def _steps(steps: int | None) -> dict[str, int]:
    return {} if steps is None else {"steps": steps}


def run_config(run: SweepRun, base: str | None, steps: int | None, overrides: dict[str, Any],
               seed: int | None = None) -> TrainConfig | None:
    """The run's training config (None for an identity run): base <- --set <- the run's set <- objective,
    --steps and the sweep's seed."""
    if run.identity:
        return None
    direct = {"objective": run.objective, **_steps(steps), **({} if seed is None else {"seed": seed})}
    return load_config(base, merge(merge(overrides, nest(run.overrides)), direct))


def _sweep_run(features: str | Path, out: Path, run: SweepRun, title: str, config: TrainConfig | None,
               fingerprint: str, options: RunOptions, log: Callable[[str], None]) -> None:
    run_dir = out / run.name
    key = sweep_key(config, fingerprint, run.identity, options.evaluation)
    reuse, note = _prepare(run_dir, key, out, options.replace_other_features)
    if reuse:
        log(f"{title}: report exists, reused")
        if run.identity is None and midpoint_report(run_dir) is None:
            _score_midpoint(run_dir, options)  # runs finished before the midpoint check existed
        return
    what = f"identity {run.identity}" if run.identity else f"{run.objective}, {config.steps} steps"
    log(f"{title}: {' '.join([what, *(f'{k}={v}' for k, v in run.overrides.items())])}")
    if note:
        log(f"    {note}")
    began = time.perf_counter()
    run_dir.mkdir(parents=True, exist_ok=True)
    atomic_write(run_dir / KEY_NAME, json.dumps(key, indent=2) + "\n")
    _train_and_embed(features, run_dir, run.identity, config, options)
    evaluate_run(run_dir, plots=False, time_reference=False, **options.evaluation)  # plans list reference rows
    diagnose(run_dir, run.objective)  # e.g. a vava run's RUN/virtual_mass.json, read by the summary tables
    if run.identity is None:
        _score_midpoint(run_dir, options)
    if (run_dir / LOG_NAME).is_file():
        plot_loss_curve(run_dir / LOG_NAME, run_dir / PLOTS / LOSS_PLOT_NAME)
    seconds = time.perf_counter() - began
    atomic_write(run_dir / TIME_NAME, json.dumps({"seconds": seconds}) + "\n")
    log(f"    done in {seconds:.0f} s")


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


def _prepare(run_dir: Path, key: dict[str, Any], out: Path, replace_other_features: bool) -> tuple[bool, str]:
    """(whether run_dir holds the finished run of `key`, what was done to make it ready otherwise)."""
    saved = _saved_key(run_dir)
    if saved is None:
        return False, ""
    if saved.get("features", key["features"]) != key["features"]:
        if not replace_other_features:
            raise VavaError(f"{run_dir} holds a run on feature set {saved['features']}, not {key['features']}; "
                            f"use another --out")
        moved = _move_aside(run_dir, out / STALE_NAME)
        return False, f"the feature set changed since this run was made: the old run was moved to {moved}"
    if saved == key:
        return _finished(run_dir), ""
    if _trains_on(saved, key, run_dir):
        (run_dir / TIME_NAME).unlink(missing_ok=True)  # unfinished until rebuilt for the new key
        changed = [k for k in sorted(RESUMABLE_CHANGES) if saved["config"].get(k) != key["config"].get(k)]
        evaluation = ["evaluation options"] if saved.get("evaluation") != key.get("evaluation") else []
        todo = "training on from the last checkpoint" if changed else "evaluating again"
        return False, f"{', '.join(changed + evaluation)} changed: {todo}"
    moved = _move_aside(run_dir, out / STALE_NAME)
    return False, f"settings changed since this run was made: the old run was moved to {moved}"


def _seconds(run_dir: Path) -> float | None:
    """The wall time recorded in run_dir's sweep_time.json; None when missing or unreadable."""
    try:
        seconds = json.loads(read_regular(run_dir / TIME_NAME))["seconds"]
    except (OSError, ValueError, KeyError, TypeError, VavaError):
        return None
    return float(seconds) if isinstance(seconds, (int, float)) and not isinstance(seconds, bool) else None


def _finished(run_dir: Path) -> bool:
    """Whether run_dir holds a finished run: a readable wall time and report (a damaged one is rebuilt)."""
    try:
        load_comparable_report(run_dir)
    except VavaError:
        return False
    return _seconds(run_dir) is not None


def _saved_key(run_dir: Path) -> dict[str, Any] | None:
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
    if {k: v for k, v in old.items() if k not in RESUMABLE_CHANGES} != \
            {k: v for k, v in new.items() if k not in RESUMABLE_CHANGES}:
        return False
    return not checkpoint_path(run_dir).is_file() or _checkpoint_step(run_dir) <= new["steps"]


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


def _train_and_embed(features: str | Path, run_dir: Path, identity: str | None, config: TrainConfig | None,
                     options: RunOptions) -> None:
    """Embed the reference row of kind `identity`, or train on `config` (as far as it is not) and embed."""
    if identity is not None:
        embed(run_dir, features, identity=identity, device=options.device, progress=False)
        return
    resume = checkpoint_path(run_dir).is_file()
    if not resume or _checkpoint_step(run_dir) < config.steps:
        # force: the folder holds the sweep's own key (checked in _prepare), not a user's files
        train(features, run_dir, config, device=options.device, resume=resume, force=True, progress=options.progress,
              evaluator=ValProbes())
    embed(run_dir, device=options.device, progress=False)


def _checkpoint_step(run_dir: Path) -> int:
    return int(load_checkpoint(checkpoint_path(run_dir))["step"])


def midpoint_step(run_dir: Path) -> int | None:
    """The latest checkpoint step saved at or before half the run's budget (None: none, or no budget known)."""
    budget = run_steps(run_dir)
    found = [step for step in saved_steps(run_dir / CHECKPOINTS) if budget is not None and 0 < step <= budget // 2]
    return found[-1] if found else None


def _score_midpoint(run_dir: Path, options: RunOptions) -> None:
    """Val classification (label fraction 1.0) of the midpoint checkpoint: RUN/report-stepN.json, the
    convergence table's val plateau test. One probe on one checkpoint: about 3 % of a run's time."""
    step = midpoint_step(run_dir)
    if step is None:
        return
    embed(run_dir, device=options.device, progress=False, checkpoint=str(step))
    evaluate_run(run_dir, plots=False, time_reference=False, checkpoint=str(step),
                 **{**options.evaluation, "tasks": ("classification",), "fractions": (1.0,)})


def midpoint_report(run_dir: Path | None) -> tuple[int, float] | None:
    """(step, val classification at label fraction 1.0) of the run's midpoint checkpoint; None when it
    has none or it was not scored."""
    step = midpoint_step(run_dir) if run_dir is not None else None
    path = None if step is None else run_dir / tagged_name(REPORT_JSON, checkpoint_tag(str(step)))
    if path is None or not path.is_file():
        return None
    try:
        score = load_report(path)["results"]["classification"]["1.0"]
    except (VavaError, KeyError, TypeError):
        return None
    return (step, float(score)) if over_seeds.numbers([score]) else None



# -- results -----------------------------------------------------------------------------------
def _finished_runs(folders: dict[int | None, Path], plan: SweepPlan,
                   failed: dict[Path, dict[str, str]]) -> dict[str, list[Path | None]]:
    """Each run finished in some seed: its folder in every seed, None where it is not finished."""
    found = {run.name: [folder / run.name if run.name not in failed.get(folder, {}) and _finished(folder / run.name)
                        else None for folder in folders.values()] for run in plan.runs}
    return {name: dirs for name, dirs in found.items() if any(dirs)}


def _over(seeds: list[int | None]) -> str:
    """What a table's numbers are taken over, for its title ("" without seeds)."""
    if seeds == [None]:
        return ""
    if len(seeds) == 1:
        return f" (seed {seeds[0]}: one seed, no sd)"
    return f" (mean ± sd over {len(seeds)} seeds: {', '.join(map(str, seeds))})"


def _results(folders: dict[int | None, Path], plan: SweepPlan, failed: dict[Path, dict[str, str]]) -> str:
    """Markdown: one comparison table per plan table (finished runs; numbers as mean ± sd over the seeds), the
    first per action too, then the probes' summary tables (targeted, alignment), convergence, timings and
    failures."""
    parts = [f"Command: `{' '.join(shlex.quote(a) for a in ['vava', *sys.argv[1:]])}`\n"]
    runs, over, seeds = _finished_runs(folders, plan, failed), _over(list(folders)), len(folders)
    reports = {name: [None if d is None else load_comparable_report(d) for d in dirs] for name, dirs in runs.items()}
    for number, (title, names) in enumerate(plan.tables.items()):
        chosen = [reports[n] for n in names if n in reports]
        if not chosen:
            parts.append(f"## {title}\n\n(no finished run)\n")
            continue
        parts.append(f"## {title}{over}\n\n{tables.markdown(*over_seeds.main_comparison(chosen))}\n")
        if number == 0:  # the main comparison, per action as well
            parts.append(f"### {title}: per action (as Table 5){over}\n\n"
                         f"{tables.markdown(*over_seeds.per_action_comparison(chosen))}\n")
    if runs:
        trained = {run.name: runs[run.name] for run in plan.runs if not run.identity and run.name in runs}
        parts += [*_summary_tables(runs, reports, seeds, over), _convergence_table(trained, reports, seeds, over),
                  _timings_table(runs, seeds, over)]
    failures = _by_name(failed, list(folders) != [None])
    if failures:
        parts.append("## Failed runs\n\n" + "\n".join(f"- {name}: {reason}" for name, reason in failures.items()) + "\n")
    return "\n".join(parts)


def _summary_tables(runs: dict[str, list[Path | None]], reports: dict[str, list[Report | None]], seeds: int,
                    over: str) -> list[str]:
    """Each probe's summary table (`Probe.summary`, in run order) with the numbers that diagnostics add to it
    (`DIAGNOSTICS`, e.g. a vava run's virtual mass; "-" for the other runs), in percent."""
    found = []
    for probe in sorted(PROBES.values(), key=lambda probe: probe.rank):
        if (summary := probe.summary()) is None:
            continue
        added = [diagnostic for diagnostic in DIAGNOSTICS.values() if probe.name in diagnostic.metrics]
        header = ["Run", *(metric.title for metric in summary.metrics),
                  *(metric.title for diagnostic in added for metric in diagnostic.metrics[probe.name])]
        rows = []
        for name, dirs in runs.items():
            columns = [[at(report, "results", *metric.path) for report in reports[name]] for metric in summary.metrics]
            for diagnostic in added:
                files = [diagnostic.read(run_dir) for run_dir in dirs]
                columns += [[at(file, *metric.path) for file in files] for metric in diagnostic.metrics[probe.name]]
            rows.append([name, *(over_seeds.summarise(values, percent, seeds) for values in columns)])
        found.append(f"## {summary.title}{over}\n\n{tables.markdown(header, rows)}")
    return found


def _loss(run_dir: Path | None) -> over_seeds.Curve | None:
    """(logged steps, total loss) of a run's train_log.csv; None when it has none or it is damaged."""
    if run_dir is None:
        return None
    try:
        steps, series = read_log(run_dir / LOG_NAME)
    except VavaError:
        return None
    return steps, series["loss"]


def run_steps(run_dir: Path | None) -> int | None:
    """The steps a trained run was built for (from its sweep key), None for a reference row or without a key."""
    config = (_saved_key(run_dir) or {}).get("config") if run_dir is not None else None
    steps = config.get("steps") if isinstance(config, dict) else None
    return steps if isinstance(steps, int) else None


def run_convergence(run_dir: Path | None) -> float | None:
    """The convergence measure c of a run (its steps from its sweep key), None when it cannot be computed."""
    curve, budget = _loss(run_dir), run_steps(run_dir)
    return None if curve is None or budget is None else over_seeds.convergence(*curve, budget)


def _convergence_table(trained: dict[str, list[Path | None]], reports: dict[str, list[Report | None]], seeds: int,
                       over: str) -> str:
    """The plateau test of each trained run's loss (c) and of its val classification (half budget -> full)."""
    rows = []
    for name, dirs in trained.items():
        found = over_seeds.numbers([run_convergence(d) for d in dirs])
        plateau = f"{sum(abs(c) < over_seeds.PLATEAU for c in found)}/{len(found)}" if found else "-"
        halves, changes = [], []
        for run_dir, report in zip(dirs, reports[name]):
            midpoint, final = midpoint_report(run_dir), _classification(report)
            if midpoint is not None and final is not None:
                halves.append(midpoint[1])
                changes.append(100 * (final - midpoint[1]))
        val_plateau = f"{sum(abs(d) < over_seeds.VAL_PLATEAU for d in changes)}/{len(changes)}" if changes else "-"
        rows.append([name, over_seeds.summarise(found, fixed, seeds), plateau,
                     over_seeds.summarise(halves, percent, seeds), over_seeds.summarise(changes, "{:.2f}".format, seeds),
                     val_plateau])
    limit, points = over_seeds.PLATEAU, over_seeds.VAL_PLATEAU
    header = ["Run", "c", f"Plateau (-{limit} < c < {limit}), seeds", "Val cls 1.0 at half budget",
              "Δ val cls 1.0 (full - half)", f"Val plateau (|Δ| < {points:g}), seeds"]
    table = tables.markdown(header, rows) if rows else "(no trained run)\n"
    return (f"## Convergence{over}\n\nc = (m1 - m2) / |m0 - m2|, the mean loss over the logged steps in (0, 0.1 S] "
            f"(m0), (0.8 S, 0.9 S] (m1) and (0.9 S, S] (m2), S = the run's steps: the share of the run's whole change "
            f"of loss made in its last tenth (\"-\": a window with fewer than 2 logged steps). Δ: the val "
            f"classification (label fraction 1.0, in points) of the last checkpoint minus that of the latest one saved "
            f"at or before S/2 (RUN/report-stepN.json): what doubling the budget changed. Plateau tests, not proof of "
            f"convergence. Loss curves: `{LOSS_CURVES_NAME}` and RUN/plots/loss.png.\n\n{table}")


def _classification(report: Report | None) -> float | None:
    """A report's val classification at label fraction 1.0 (None: none)."""
    found = over_seeds.numbers([((report or {}).get("results", {}).get("classification") or {}).get("1.0")])
    return found[0] if found else None


def _timings_table(runs: dict[str, list[Path | None]], seeds: int, over: str) -> str:
    seconds = {name: [_seconds(d) for d in dirs if d is not None] for name, dirs in runs.items()}
    rows = "\n".join(f"| {name} | {over_seeds.summarise(s, '{:.0f}'.format, seeds)} |" for name, s in seconds.items())
    total = sum(over_seeds.numbers([s for values in seconds.values() for s in values]))
    return (f"## Wall time per run (train + embed + evaluate){over}\n\n| run | seconds |\n| --- | --- |\n{rows}\n"
            f"| total | {total:.0f} |\n")


def _write_loss_curves(folders: dict[int | None, Path], plan: SweepPlan, failed: dict[Path, dict[str, str]],
                       out_png: Path) -> None:
    """OUT/loss_curves.png: each trained run's loss over |its first logged value|, mean over the seeds."""
    runs = _finished_runs(folders, plan, failed)
    curves = {}
    for run in plan.runs:
        logged = [curve for d in runs.get(run.name, []) if (curve := _loss(d)) is not None]
        if not run.identity and (mean_curve := over_seeds.relative_curve(logged)) is not None:
            curves[run.name] = mean_curve
    if curves:
        seeds = "" if list(folders) == [None] else f", mean over seeds {', '.join(map(str, folders))}"
        plot_relative_losses(curves, out_png, f"each run's loss / |its first logged loss|{seeds}")
