"""`vava diagnose`: the sanity ladder, run on a feature set before any objective is compared.

1. **Frozen features**: the val classification of the standardised frozen features (and of time only,
   for scale): what a probe gets without any training.
2. **Supervised**: the preset trained with phase labels. It passes when it fits its training labels
   (the head's accuracy over the last tenth of its logged steps at least `TRAIN_ACCURACY`), its loss
   has reached a plateau and its val classification reaches the frozen features'. Otherwise the
   ladder says which of these failed and what that points to.
3. **Self-supervised objectives**: each one's val classification beside the two rungs above.

Every rung is a run of one sweep (`vava.pipeline.sweep`) in OUT, so a rerun reuses what is finished;
OUT/ladder.md holds the verdict, OUT/results.md the sweep's full tables.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from vava.core.errors import VavaError
from vava.core.files import atomic_write
from vava.core.run_folder import LOG_NAME
from vava.pipeline.sweep import RESULTS_NAME, SweepPlan, SweepRun, run_convergence, run_steps, run_sweep
from vava.stages.evaluate import seeds as over_seeds
from vava.stages.evaluate.plots import read_log
from vava.stages.evaluate.probes.base import markdown
from vava.stages.evaluate.report import load_comparable_report
from vava.stages.train.objectives import OBJECTIVES

LADDER_NAME = "ladder.md"  # in the ladder's folder OUT (a sweep folder, not a run folder)
TRAIN_ACCURACY = 0.9  # "approaches 100 %": the head's accuracy on its training batches, dropout on
# the names of the `benchmark` plan, so a ladder run into a benchmark seed folder reuses its runs
TIME, FROZEN, SUPERVISED = "time-only", "backbone-features-standardised", "supervised"
SELF_SUPERVISED = tuple(name for name, objective in OBJECTIVES.items() if not objective.uses_labels)


@dataclass(frozen=True)
class Rung:
    name: str
    val: float | None               # val classification, label fraction 1.0
    train: float | None = None      # supervised: the head's training accuracy over the last tenth
    plateau: float | None = None    # trained runs: the convergence measure c of the sweep


@dataclass(frozen=True)
class Ladder:
    rungs: dict[str, Rung]
    problems: list[str]  # why the supervised rung fails; empty when it passes

    @property
    def passed(self) -> bool:
        return not self.problems


def ladder_plan(preset: str | None, objectives: Sequence[str]) -> SweepPlan:
    """The sweep behind the ladder, trained with `preset`: two reference rows, supervised, then `objectives`."""
    unknown = [o for o in objectives if o not in SELF_SUPERVISED]
    if unknown:
        raise VavaError(f"--objectives: {unknown[0]!r} is not one of {', '.join(SELF_SUPERVISED)}")
    runs = [SweepRun(TIME, identity="time"), SweepRun(FROZEN, identity="features-standardised"),
            SweepRun(SUPERVISED, objective="supervised"), *(SweepRun(o, objective=o) for o in objectives)]
    return SweepPlan(preset, runs, {"Sanity ladder": [run.name for run in runs]})


def run_ladder(features: str | Path, out: str | Path, preset: str | None, objectives: Sequence[str], *,
               steps: int | None = None, overrides: dict[str, Any] | None = None, device: str = "auto",
               log: Callable[[str], None] = print) -> Ladder:
    """Run the ladder's sweep in `out` with the training preset `preset`, write OUT/ladder.md, return the verdict."""
    out = Path(out)
    plan = ladder_plan(preset, objectives)
    results, failed = run_sweep(features, out, plan, steps=steps, overrides=overrides, device=device, log=log)
    atomic_write(out / RESULTS_NAME, results)
    if failed:
        raise VavaError(f"{out}: the ladder's runs failed: " + "; ".join(f"{k}: {v}" for k, v in failed.items()))
    ladder = judge({run.name: _rung(out / run.name, run.name) for run in plan.runs})
    atomic_write(out / LADDER_NAME, render(ladder, preset))
    return ladder


def _rung(run_dir: Path, name: str) -> Rung:
    report = load_comparable_report(run_dir)
    val = ((report or {}).get("results", {}).get("classification") or {}).get("1.0")
    budget = run_steps(run_dir)
    if budget is None or not (run_dir / LOG_NAME).is_file():  # a reference row
        return Rung(name, val)
    steps, series = read_log(run_dir / LOG_NAME)
    late = 10 * steps > 9 * budget
    accuracy = series.get("accuracy")
    train = float(np.nanmean(accuracy[late])) if accuracy is not None and late.any() else None
    return Rung(name, val, train, run_convergence(run_dir))


def judge(rungs: dict[str, Rung]) -> Ladder:
    """The verdict on the supervised rung: every reason it fails, each with what it points to."""
    frozen, supervised = rungs[FROZEN], rungs[SUPERVISED]
    problems = []
    if supervised.train is None or supervised.train < TRAIN_ACCURACY:
        problems.append(f"supervised does not fit its training labels (accuracy {_percent(supervised.train)} < "
                        f"{100 * TRAIN_ACCURACY:.0f} % over the last tenth of its steps): it underfits; train longer "
                        "or at a higher optim.lr, and check model.standardize and the context (model.context_*)")
    if supervised.plateau is None or abs(supervised.plateau) >= over_seeds.PLATEAU:
        problems.append(f"supervised's loss has not reached a plateau (c = {_fixed(supervised.plateau)}, needs "
                        f"|c| < {over_seeds.PLATEAU}): its numbers are not those of a converged run; train longer")
    if supervised.val is None or frozen.val is None or supervised.val < frozen.val:
        problems.append(f"supervised's val classification ({_percent(supervised.val)}) is below the frozen "
                        f"features' ({_percent(frozen.val)}): training loses what the features hold; if it fits its "
                        "training labels, it overfits the train videos (fewer steps, more videos, more dropout)")
    return Ladder(rungs, problems)


def render(ladder: Ladder, preset: str | None) -> str:
    """OUT/ladder.md: the rungs and the verdict."""
    frozen = ladder.rungs[FROZEN].val
    rows = [[r.name, _percent(r.val), _points(r.val, frozen), _percent(r.train), _fixed(r.plateau)]
            for r in ladder.rungs.values()]
    verdict = ("**Passed**: supervised fits its training labels, has converged and reaches the frozen features "
               "on val." if ladder.passed else "**Failed**:\n\n" + "\n".join(f"- {p}" for p in ladder.problems))
    return (f"# Sanity ladder (preset `{preset or 'defaults'}`)\n\n"
            + markdown(["Rung", "Val classification", "vs frozen features", "Train accuracy (supervised)",
                        "Plateau c"], rows)
            + f"\nVal classification: label fraction 1.0, the evaluation's default probe. Train accuracy: the "
              f"supervised head on its training batches over the last tenth of the steps (at least "
              f"{100 * TRAIN_ACCURACY:.0f} % to pass). Plateau: c of the convergence test (|c| < "
              f"{over_seeds.PLATEAU}).\n\n{verdict}\n")


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f} %"


def _points(value: float | None, reference: float | None) -> str:
    return "-" if value is None or reference is None else f"{100 * (value - reference):+.1f}"


def _fixed(value: float | None) -> str:
    return "-" if value is None else f"{value:+.3f}"
