"""A sweep's results: the comparison tables as mean ± sd over the seeds, the probes' summary tables,
both plateau tests (the loss's and the val score's from half to the full budget), wall times and
failures (`results.md`), and the mean loss curves (`loss_curves.png`).

The tables are made from run records (`record`): those of a sweep's own run folders (`folder_records`), or
records gathered from several sweeps (`vava gather`).
"""
from __future__ import annotations

import shlex
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from vava.core.errors import VavaError
from vava.core.report_file import REPORT_JSON, load_report
from vava.core.run_folder import CHECKPOINTS, LOG_NAME, checkpoint_tag, saved_steps, tagged_name
from vava.pipeline.diagnostics import DIAGNOSTICS
from vava.pipeline.sweep.freshness import finished, recorded_seconds, run_steps, saved_key
from vava.pipeline.sweep.plan import LOSS_CURVES_NAME, SweepPlan
from vava.pipeline.sweep.record import RunRecord, thinned_curve
from vava.stages.evaluate import seeds as over_seeds
from vava.stages.evaluate import tables
from vava.stages.evaluate.plots import plot_relative_losses, read_log
from vava.stages.evaluate.probes import PROBES
from vava.stages.evaluate.probes.base import Report, at, fixed, percent
from vava.stages.evaluate.report import load_comparable_report


def by_name(failed: dict[Path, dict[str, str]], seeded: bool) -> dict[str, str]:
    """Failures keyed NAME, or seed-S/NAME with seeds."""
    return {f"{folder.name}/{name}" if seeded else name: reason
            for folder, runs in failed.items() for name, reason in runs.items()}


def midpoint_step(run_dir: Path) -> int | None:
    """The latest checkpoint step saved at or before half the run's budget (None: none, or no budget known)."""
    budget = run_steps(run_dir)
    found = [step for step in saved_steps(run_dir / CHECKPOINTS) if budget is not None and 0 < step <= budget // 2]
    return found[-1] if found else None


def midpoint_score(run_dir: Path | None) -> float | None:
    """Val classification (label fraction 1.0) of the run's midpoint checkpoint; None when it has none or it
    was not scored."""
    step = midpoint_step(run_dir) if run_dir is not None else None
    path = None if step is None else run_dir / tagged_name(REPORT_JSON, checkpoint_tag(str(step)))
    if path is None or not path.is_file():
        return None
    try:
        return _classification(load_report(path))
    except VavaError:
        return None


def folder_record(run_dir: Path, seed: int | None) -> RunRecord | None:
    """The record of the finished run in run_dir (None: not finished, or its report is damaged)."""
    if not finished(run_dir):
        return None
    curve, budget = _loss(run_dir), run_steps(run_dir)  # the log is read once for c, the fall and the curve
    measured = curve is not None and budget is not None
    return RunRecord(run_dir.name, seed, saved_key(run_dir) or {"features": "", "config": None},
                     load_comparable_report(run_dir), recorded_seconds(run_dir),
                     over_seeds.convergence(*curve, budget) if measured else None,
                     midpoint_score(run_dir), None if curve is None else thinned_curve(*curve),
                     {d.file: found for d in DIAGNOSTICS.values() if (found := d.read(run_dir))},
                     over_seeds.last_tenth_in_standard_errors(*curve, budget) if measured else None)


def folder_records(folders: dict[int | None, Path], plan: SweepPlan,
                   failed: dict[Path, dict[str, str]]) -> dict[str, list[RunRecord | None]]:
    """Each run finished in some seed folder: its record in every seed, None where it is not finished."""
    found = {run.name: [None if run.name in failed.get(folder, {}) else folder_record(folder / run.name, seed)
                        for seed, folder in folders.items()] for run in plan.runs}
    return {name: records for name, records in found.items() if any(records)}


def _over(seeds: list[int | None]) -> str:
    """What a table's numbers are taken over, for its title ("" without seeds)."""
    if seeds == [None]:
        return ""
    if len(seeds) == 1:
        return f" (seed {seeds[0]}: one seed, no sd)"
    return f" (mean ± sd over {len(seeds)} seeds: {', '.join(map(str, seeds))})"


def records_markdown(runs: dict[str, list[RunRecord | None]], seeds: list[int | None], plan: SweepPlan,
                     failures: dict[str, str], missing: Sequence[str] = ()) -> str:
    """Markdown: one comparison table per plan table (finished runs, each with its record in every seed of
    `seeds` or None; numbers as mean ± sd over the seeds), the first per action too, then the probes' summary
    tables (targeted, alignment), convergence, timings, failures and the `missing` runs (no record gathered)."""
    parts = [f"Command: `{' '.join(shlex.quote(a) for a in ['vava', *sys.argv[1:]])}`\n"]
    over = _over(seeds)
    reports = {name: [None if r is None else r.report for r in records] for name, records in runs.items()}
    for number, (title, names) in enumerate(plan.tables.items()):
        chosen = [reports[n] for n in names if n in reports]
        if not chosen:
            parts.append(f"## {title}\n\n(no finished run)\n")
            continue
        parts.append(f"## {title}{over}\n\n{tables.markdown(*over_seeds.main_comparison(chosen))}\n")
        if number == 0:  # the main comparison, per action as well
            parts.append(f"### {title}: per action (as Table 5){over}\n\n"
                         f"{tables.markdown(*over_seeds.per_action_comparison(chosen))}\n")
    for title, pairs in plan.differences.items():
        parts.append(_differences_table(title, pairs, reports, over))
    if runs:
        trained = {run.name: runs[run.name] for run in plan.runs if not run.identity and run.name in runs}
        parts += [*_summary_tables(runs, len(seeds), over), _convergence_table(trained, len(seeds), over),
                  _timings_table(runs, len(seeds), over)]
    if failures:
        listed = "\n".join(f"- {name}: {reason}" for name, reason in failures.items())
        parts.append(f"## Failed runs\n\n{listed}\n")
    if missing:
        parts.append(f"## Runs without a record\n\n{', '.join(missing)}\n")
    return "\n".join(parts)


def _differences_table(title: str, pairs: list[tuple[str, str]], reports: dict[str, list[Report | None]],
                       over: str) -> str:
    """A plan's `differences` table: A - B of every number, seed by seed, then mean ± sd over the seeds."""
    found = [(f"{a} − {b}", reports[a], reports[b]) for a, b in pairs if a in reports and b in reports]
    header, rows = over_seeds.paired_differences(found)
    table = tables.markdown(header, rows) if rows else "(no seed where both runs of a pair finished)\n"
    return (f"## {title}{over}\n\nEach row: run A's number minus run B's in the same seed (percentages in points), "
            f"then the mean ± sd of these differences over the seeds where both finished.\n\n{table}")


def _summary_tables(runs: dict[str, list[RunRecord | None]], seeds: int, over: str) -> list[str]:
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
        for name, records in runs.items():
            reports = [None if r is None else r.report for r in records]
            columns = [[at(report, "results", *metric.path) for report in reports] for metric in summary.metrics]
            for diagnostic in added:
                files = [r.diagnostics.get(diagnostic.file, {}) if r is not None else {} for r in records]
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


def run_convergence(run_dir: Path | None) -> float | None:
    """The convergence measure c of a run (its steps from its sweep key), None when it cannot be computed."""
    curve, budget = _loss(run_dir), run_steps(run_dir)
    return None if curve is None or budget is None else over_seeds.convergence(*curve, budget)


def _convergence_table(trained: dict[str, list[RunRecord | None]], seeds: int, over: str) -> str:
    """The plateau test of each trained run's loss (c) and of its val classification (half budget -> full)."""
    rows, failing = [], []
    for name, records in trained.items():
        found = over_seeds.numbers([r.convergence for r in records if r is not None])
        plateau = f"{sum(abs(c) < over_seeds.PLATEAU for c in found)}/{len(found)}" if found else "-"
        halves, changes, falls = [], [], []
        for record in filter(None, records):
            midpoint, final = record.midpoint, _classification(record.report)
            change = None if midpoint is None or final is None else 100 * (final - midpoint)
            if change is not None:
                halves.append(midpoint)
                changes.append(change)
            falls.append(fall := record.loss_fall_se)
            if record.convergence is not None and abs(record.convergence) >= over_seeds.PLATEAU:
                failing.append(f"- {'' if record.seed is None else f'seed-{record.seed}/'}{name}: "
                               f"c {record.convergence:+.3f}, last tenth's fall {_or_dash(fall, '{:+.1f} SE')}, "
                               f"Δ {_or_dash(change, '{:+.2f} points')}")
        val_plateau = f"{sum(abs(d) < over_seeds.VAL_PLATEAU for d in changes)}/{len(changes)}" if changes else "-"
        rows.append([name, over_seeds.summarise(found, fixed, seeds), plateau,
                     over_seeds.summarise(falls, "{:.1f}".format, seeds), over_seeds.summarise(halves, percent, seeds),
                     over_seeds.summarise(changes, "{:.2f}".format, seeds), val_plateau])
    limit, points = over_seeds.PLATEAU, over_seeds.VAL_PLATEAU
    header = ["Run", "c", f"Plateau (-{limit} < c < {limit}), seeds", "Last tenth's fall (SE)",
              "Val cls 1.0 at half budget", "Δ val cls 1.0 (full - half)", f"Val plateau (|Δ| < {points:g}), seeds"]
    table = tables.markdown(header, rows) if rows else "(no trained run)\n"
    if failing:
        table += "\nRuns that fail the loss plateau test:\n\n" + "\n".join(failing) + "\n"
    return (f"## Convergence{over}\n\nc = (m1 - m2) / |m0 - m2|, the mean loss over the logged steps in (0, 0.1 S] "
            f"(m0), (0.8 S, 0.9 S] (m1) and (0.9 S, S] (m2), S = the run's steps: the share of the run's whole change "
            f"of loss made in its last tenth (\"-\": a window with fewer than 2 logged steps). Last tenth's fall: "
            f"m1 - m2 in standard errors of the two windows' means (\"-\": a record made before it was kept): whether the "
            f"fall c measures stands out of the loss's noise (below 2: it does not, and c is mostly noise; many with a "
            f"small c: a real but small fall). Δ: the val "
            f"classification (label fraction 1.0, in points) of the last checkpoint minus that of the latest one saved "
            f"at or before S/2 (RUN/report-stepN.json): what doubling the budget changed. Plateau tests, not proof of "
            f"convergence. Loss curves: `{LOSS_CURVES_NAME}` and RUN/plots/loss.png.\n\n{table}")


def _or_dash(value: float | None, fmt: str) -> str:
    return "-" if value is None else fmt.format(value)


def _classification(report: Report | None) -> float | None:
    """A report's val classification at label fraction 1.0 (None: none)."""
    found = over_seeds.numbers([at(report, "results", "classification", "1.0")])
    return found[0] if found else None


def _timings_table(runs: dict[str, list[RunRecord | None]], seeds: int, over: str) -> str:
    seconds = {name: [r.seconds for r in records if r is not None] for name, records in runs.items()}
    rows = [[name, over_seeds.summarise(s, "{:.0f}".format, seeds)] for name, s in seconds.items()]
    total = sum(over_seeds.numbers([s for values in seconds.values() for s in values]))
    table = tables.markdown(["run", "seconds"], [*rows, ["total", f"{total:.0f}"]])
    return f"## Wall time per run (train + embed + evaluate){over}\n\n{table}"


def write_loss_curves(runs: dict[str, list[RunRecord | None]], seeds: list[int | None], plan: SweepPlan,
                      out_png: Path) -> bool:
    """The mean loss curves plot: each trained run's loss over |its first logged value|, mean over the seeds;
    whether there was a curve to draw (none: nothing written)."""
    curves = {}
    for run in plan.runs:
        logged = [(np.asarray(r.loss[0]), np.asarray(r.loss[1])) for r in runs.get(run.name, [])
                  if r is not None and r.loss is not None]
        if not run.identity and (mean_curve := over_seeds.relative_curve(logged)) is not None:
            curves[run.name] = mean_curve
    if curves:
        over = "" if seeds == [None] else f", mean over seeds {', '.join(map(str, seeds))}"
        plot_relative_losses(curves, out_png, f"each run's loss / |its first logged loss|{over}")
    return bool(curves)
