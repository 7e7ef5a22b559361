"""`vava reproduce`: one dataset end to end for some objectives, as the papers evaluate it.

extract (once; the cache is reused) -> train each objective -> embed -> evaluate -> one comparison
report in OUT/results.md. The training, embedding and evaluation are a `vava sweep` in OUT/runs, so
rerunning skips every finished run and a changed option reruns only the runs it changes (the sweep
key; a changed extraction option changes the feature set, so it reruns every run); the feature cache
is keyed by its own fingerprint in OUT/cache.

`per_action` trains one model per action (each on that action's train videos only, evaluated on its
val videos), the protocol of LAV and VAVA on Penn Action and of VAVA on COIN's activities; the report
then shows each objective's numbers as the unweighted mean over the per-action models. Without it one
joint model is trained on every action (Penn Action as in the supplement's Table 3). The two protocols
can share OUT: their runs have different names and their reports are OUT/results.md and
OUT/results-per-action.md.

Before any work the plan is printed (runs, steps, a rough time); each run shows a progress bar with
step/total and ETA, and prints its measured estimate after its first steps. Every run is evaluated with
the papers' Kendall's tau stride for the dataset unless `evaluation` says otherwise.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from vava.core.devices import resolve_device
from vava.core.errors import VavaError
from vava.core.files import atomic_write, check_plain_name
from vava.core.formatting import duration
from vava.core.records import VideoRecord
from vava.core.report_file import REPORT_JSON
from vava.pipeline.datasets import DATASETS
from vava.pipeline.sweep import RESULTS_NAME, SEED_FOLDER, SweepPlan, SweepRun, run_config, run_sweep
from vava.stages.evaluate import seeds as over_seeds
from vava.stages.evaluate import tables
from vava.stages.evaluate.probes.base import Report
from vava.stages.evaluate.report import load_comparable_report
from vava.stages.extract.run import ExtractOptions, extract
from vava.stages.train.estimate import cpu_warning, rough_seconds_per_step
from vava.stages.train.objectives import OBJECTIVES

CACHE_FOLDER, RUNS_FOLDER = "cache", "runs"
PER_ACTION_RESULTS = "results-per-action.md"


def results_name(per_action: bool) -> str:
    """The report of a protocol in OUT: results.md (one joint model) or results-per-action.md."""
    return PER_ACTION_RESULTS if per_action else RESULTS_NAME


def evaluation_options(dataset: str, given: dict[str, Any]) -> dict[str, Any]:
    """The `vava evaluate` options of every run: the papers' for `dataset` (its adapter's `evaluation`, e.g. the
    Kendall's tau stride; none for an unregistered name), then `given`."""
    adapter = DATASETS.get(dataset)
    return {**(adapter.evaluation if adapter else {}), **given}


def parse_objectives(text: str) -> list[str]:
    """Objective names separated by commas or spaces, each known, none twice."""
    names = [name for name in text.replace(",", " ").split() if name]
    unknown = [name for name in names if name not in OBJECTIVES]
    if not names or unknown:
        raise VavaError(f"--objectives: {unknown[0] + ' is unknown' if unknown else 'none given'} "
                        f"(choose from {', '.join(sorted(OBJECTIVES))})")
    if len(set(names)) < len(names):
        raise VavaError("--objectives: an objective is named twice")
    return names


def reproduction_plan(objectives: Sequence[str], base: str | None, actions: Sequence[str] | None) -> SweepPlan:
    """One run per objective, or per objective and action (`OBJECTIVE-ACTION`, trained on that action).

    A run's name is its folder: an action that would not make a plain folder name (a '/', '..') is refused.
    """
    if actions is None:
        runs = [SweepRun(name, name) for name in objectives]
    else:
        runs = [SweepRun(check_plain_name(f"{name}-{action}", f"--per-action: action {action!r} names the run"),
                         name, {"data.actions": [action]})
                for name in objectives for action in actions]
    return SweepPlan(base, runs, {"Objectives": [run.name for run in runs]})


def reproduce(records: list[VideoRecord], out: str | Path, *, objectives: Sequence[str], extract_options: ExtractOptions,
              dataset: dict[str, Any], per_action: bool = False, base: str | None = None, steps: int | None = None,
              overrides: dict[str, Any] | None = None, seeds: Sequence[int] | None = None,
              evaluation: dict[str, Any] | None = None, progress: bool = False,
              log: Callable[[str], None] = print) -> tuple[Path, dict[str, str]]:
    """Run the whole protocol into OUT; return the path of its report (`results_name`) and the failed runs
    (name: reason). `evaluation`: `vava evaluate` options for every run (`evaluation_options` adds the
    dataset's Kendall's tau stride); `progress`: a progress bar while each run trains.

    Videos that fail to extract stop the reproduction before any training (the others stay cached).
    """
    out = Path(out)
    actions = sorted({r.action for r in records if r.split == "train"}) if per_action else None
    plan = reproduction_plan(objectives, base, actions)  # checked before the extraction
    evaluation = evaluation_options(dataset.get("adapter", ""), evaluation or {})
    for line in describe_plan(plan, records, dataset, actions, steps, overrides or {}, seeds, evaluation,
                              extract_options):
        log(line)
    summary = extract(records, out / CACHE_FOLDER, extract_options, dataset=dataset)
    if summary.failed:
        first = next(iter(summary.failed.values()))
        raise VavaError(f"{len(summary.failed)} of {len(records)} videos failed to extract (first: {first}); "
                        "the rest are cached, fix or remove these and run again")
    log(f"features: {summary.path} ({len(summary.extracted)} videos extracted, {len(summary.cached)} cached)")
    runs = out / RUNS_FOLDER
    markdown, failed = run_sweep(summary.path, runs, plan, steps=steps, overrides=overrides,
                                 device=extract_options.device, seeds=seeds, log=log, progress=progress,
                                 evaluation=evaluation, results_name=results_name(per_action),
                                 replace_other_features=True)
    if actions is not None:
        markdown = _per_action_models(runs, objectives, actions, seeds) + "\n" + markdown
    title = f"# Reproduction: {dataset.get('adapter', '?')} ({'one model per action' if per_action else 'one model'})\n\n"
    path = atomic_write(out / results_name(per_action), title + markdown)
    return path, failed


def describe_plan(plan: SweepPlan, records: list[VideoRecord], dataset: dict[str, Any], actions: Sequence[str] | None,
                  steps: int | None, overrides: dict[str, Any], seeds: Sequence[int] | None,
                  evaluation: dict[str, Any], extract_options: ExtractOptions) -> list[str]:
    """What a reproduction is about to do, for the log: the protocol, runs, steps, a rough time, the evaluation.

    The time is `rough_seconds_per_step` of the first run's config on this machine, times every run's steps.
    """
    configs = [run_config(run, plan.base, steps, overrides) for run in plan.runs]
    repeats = len(seeds) if seeds else 1
    total_steps = repeats * sum(config.steps for config in configs)
    device = resolve_device(extract_options.device)
    per_step = rough_seconds_per_step(configs[0], extract_options.map_shape, device)
    objectives = ", ".join(dict.fromkeys(run.objective for run in plan.runs))
    protocol = "one joint model" if actions is None else f"one model per action ({len(actions)} actions)"
    step_counts = sorted({config.steps for config in configs})
    seeded = "" if seeds is None else f" x {repeats} seeds ({', '.join(map(str, seeds))})"
    runs = f"{len(plan.runs)} run{'s' if len(plan.runs) > 1 else ''}"
    lines = [f"plan: {dataset.get('adapter', '?')}, {len(records)} videos, {protocol}: {runs} ({objectives}){seeded}",
             f"  steps: {', '.join(map(str, step_counts))} per run (config {plan.base or 'defaults'}"
             f"{', --steps' if steps is not None else ''}), {total_steps} in all",
             f"  time: about {per_step:.3g} s a step on {device.type} (rough: the embedder timed here), about "
             f"{duration(total_steps * per_step)} of training in all; each run prints its own estimate after its "
             "first steps",
             "  evaluation: " + (", ".join(f"{key}={value}" for key, value in evaluation.items()) or "the defaults")]
    warning = cpu_warning(total_steps * per_step, device)
    return lines + ([f"  {warning}"] if warning else [])


def _per_action_models(runs: Path, objectives: Sequence[str], actions: Sequence[str],
                       seeds: Sequence[int] | None) -> str:
    """The table of the per-action protocol: per objective (and seed), the mean over its per-action models."""
    folders = [runs] if seeds is None else [runs / SEED_FOLDER.format(seed) for seed in seeds]
    rows: list[list[Report | None]] = []
    for name in objectives:
        per_seed = []
        for folder in folders:
            reports = [load_comparable_report(folder / f"{name}-{action}") for action in actions
                       if (folder / f"{name}-{action}" / REPORT_JSON).is_file()]
            per_seed.append(merge_action_models(name, reports) if len(reports) == len(actions) else None)
        if any(report is not None for report in per_seed):
            rows.append(per_seed)
    if not rows:
        return "## Per-action models\n\n(no objective has finished every action)\n"
    over = "" if seeds is None else f", mean ± sd over seeds {', '.join(map(str, seeds))}"
    return (f"## Per-action models: mean over {len(actions)} actions{over}\n\n"
            f"{tables.markdown(*over_seeds.main_comparison(rows))}\n")


def merge_action_models(name: str, reports: Sequence[Report]) -> Report:
    """One report for a set of per-action models, each evaluated on its own action: `per_action` joined and
    every result the unweighted mean over the models (the papers' mean over actions), labelled `name`."""
    merged = over_seeds.mean_over(reports)
    merged["per_action"] = {action: values for report in reports for action, values in report["per_action"].items()}
    merged["results"] = {**merged["results"], "actions": len(merged["per_action"])}
    merged["attrs"] = {**reports[0]["attrs"], "run": name}
    return merged
