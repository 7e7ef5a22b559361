"""Building a sweep: every run of a plan on one feature set, in OUT or once per seed in OUT/seed-S.

Each run is trained (unless a reference row), embedded, evaluated, diagnosed (`DIAGNOSTICS`) and its
checkpoint at about half its budget scored on the val split (`RUN/report-stepN.json`, the val plateau
test); a finished run whose settings match is reused (`freshness`), so an interrupted sweep picks up
where it stopped.
"""
from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vava.cache.store import FeatureSet
from vava.core.config import merge, nest
from vava.core.errors import VavaError
from vava.core.files import atomic_write
from vava.core.run_folder import KEY_NAME, LOG_NAME, LOSS_PLOT_NAME, PLOTS, TIME_NAME, checkpoint_path
from vava.pipeline.diagnostics import diagnose
from vava.pipeline.sweep.freshness import checkpoint_step, prepare, sweep_key
from vava.pipeline.sweep.plan import LOSS_CURVES_NAME, RESULTS_NAME, SEED_FOLDER, SweepPlan, SweepRun
from vava.pipeline.sweep.record import RECORD_NAME, write_record
from vava.pipeline.sweep.results import (
    by_name,
    folder_record,
    folder_records,
    midpoint_score,
    midpoint_step,
    records_markdown,
    write_loss_curves,
)
from vava.pipeline.val_probes import ValProbes
from vava.stages.embed.run import embed
from vava.stages.evaluate.plots import plot_loss_curve
from vava.stages.evaluate.run import evaluate_run
from vava.stages.train.config import TrainConfig, load_config
from vava.stages.train.loop import train


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
    (which also gets its own table, `results_name`); write each finished run's record (RUN/sweep_record.json)
    and OUT/loss_curves.png; return (results markdown, failures by run: NAME, or seed-S/NAME).

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
        failed[folder] = _sweep_folder(features, folder, seed, plan, fingerprint, options, log,
                                       lambda run, seed=seed: run_config(run, plan.base, steps, overrides, seed))
        if seed is not None:
            folder.mkdir(parents=True, exist_ok=True)  # even when every run failed before making its folder
            atomic_write(folder / results_name, records_markdown(folder_records({seed: folder}, plan, failed), [seed],
                                                                 plan, by_name(failed, True)))
    runs, failures = folder_records(folders, plan, failed), by_name(failed, seeds is not None)
    write_loss_curves(runs, list(folders), plan, out / LOSS_CURVES_NAME)
    return records_markdown(runs, list(folders), plan, failures), failures


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


def _sweep_folder(features: str | Path, folder: Path, seed: int | None, plan: SweepPlan, fingerprint: str,
                  options: RunOptions, log: Callable[[str], None],
                  config_of: Callable[[SweepRun], TrainConfig | None]) -> dict[str, str]:
    """Every run of `plan` in `folder` (the sweep's seed: `seed`); return the failures by run name."""
    failed: dict[str, str] = {}
    for index, run in enumerate(plan.runs, start=1):
        try:
            _sweep_run(features, folder, seed, run, f"[{index}/{len(plan.runs)}] {run.name}", config_of(run),
                       fingerprint, options, log)
        except VavaError as err:
            failed[run.name] = str(err)
        except Exception as err:  # a bug met by one run must not cost the others: reported, not raised
            failed[run.name] = f"{type(err).__name__}: {err}"
        if run.name in failed:
            log(f"    failed: {failed[run.name]}")
    return failed


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


def _sweep_run(features: str | Path, out: Path, seed: int | None, run: SweepRun, title: str,
               config: TrainConfig | None, fingerprint: str, options: RunOptions, log: Callable[[str], None]) -> None:
    """Build (or reuse) one run; its record is written when it is finished, and removed while it is rebuilt."""
    run_dir = out / run.name
    key = sweep_key(config, fingerprint, run.identity, options.evaluation)
    reuse, note = prepare(run_dir, key, out, options.replace_other_features)
    if reuse:
        log(f"{title}: report exists, reused")
        if run.identity is None and midpoint_score(run_dir) is None:
            _score_midpoint(run_dir, options)  # runs finished before the midpoint check existed
        _keep_record(run_dir, seed)
        return
    (run_dir / RECORD_NAME).unlink(missing_ok=True)  # an interrupted rebuild leaves no record of the old run
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
    _keep_record(run_dir, seed)
    log(f"    done in {seconds:.0f} s")


def _keep_record(run_dir: Path, seed: int | None) -> None:
    """RUN/sweep_record.json of the finished run in run_dir."""
    record = folder_record(run_dir, seed)
    if record is not None:
        write_record(run_dir, record)


def _train_and_embed(features: str | Path, run_dir: Path, identity: str | None, config: TrainConfig | None,
                     options: RunOptions) -> None:
    """Embed the reference row of kind `identity`, or train on `config` (as far as it is not) and embed."""
    if identity is not None:
        embed(run_dir, features, identity=identity, device=options.device, progress=False)
        return
    resume = checkpoint_path(run_dir).is_file()
    if not resume or checkpoint_step(run_dir) < config.steps:
        # force: the folder holds the sweep's own key (checked in prepare), not a user's files
        train(features, run_dir, config, device=options.device, resume=resume, force=True, progress=options.progress,
              evaluator=ValProbes())
    embed(run_dir, device=options.device, progress=False)


def _score_midpoint(run_dir: Path, options: RunOptions) -> None:
    """Val classification (label fraction 1.0) of the midpoint checkpoint: RUN/report-stepN.json, the
    convergence table's val plateau test. One probe on one checkpoint: about 3 % of a run's time."""
    step = midpoint_step(run_dir)
    if step is None:
        return
    embed(run_dir, device=options.device, progress=False, checkpoint=str(step))
    evaluate_run(run_dir, plots=False, time_reference=False, checkpoint=str(step),
                 **{**options.evaluation, "tasks": ("classification",), "fractions": (1.0,)})
