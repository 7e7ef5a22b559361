"""A sweep's tables over seeds: every number as mean ± sd, a run's convergence, its mean loss curve.

A run is given as its reports (or values) in each seed, None where it did not finish. A cell shows
the mean over the seeds that have a number there, then `± sd` (sample sd, ddof=1) when at least two
do, then `(n=K)` when fewer than all seeds do; "-" when none does. With one seed a cell is exactly
the single report's cell.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from vava.stages.evaluate import tables
from vava.stages.evaluate.probes.base import Report

Reduce = Callable[[list[float]], float | None]
Curve = tuple[np.ndarray, np.ndarray]  # logged steps, values
PLATEAU = 0.02  # |c| below this marks a run's loss as at a plateau
VAL_PLATEAU = 1.0  # |change| of val classification (points) from half to full budget below this: a val plateau
_NUMBER_PARTS = ("results", "per_action")  # the parts of a report that hold its numbers


def numbers(values: Sequence[object]) -> list[float]:
    """The finite numbers among `values` (booleans and anything else dropped)."""
    return [float(v) for v in values
            if isinstance(v, (int, float)) and not isinstance(v, bool) and np.isfinite(v)]


def mean(values: list[float]) -> float | None:
    return float(np.mean(values)) if values else None


def sd(values: list[float]) -> float | None:
    """Sample standard deviation (ddof=1); None for fewer than two values."""
    return float(np.std(values, ddof=1)) if len(values) >= 2 else None


def spread(mean_text: str, sd_text: str, n: int, seeds: int) -> str:
    """One cell from the formatted mean and sd of `n` values out of `seeds`."""
    if n == 0:
        return "-"
    text = f"{mean_text} ± {sd_text}" if n >= 2 else mean_text
    return text if n == seeds else f"{text} (n={n})"


def summarise(values: Sequence[object], fmt: Callable[[float], str], seeds: int) -> str:
    """The cell of one quantity measured in each seed (None or missing where it was not)."""
    found = numbers(values)
    average, deviation = mean(found), sd(found)
    return spread("-" if average is None else fmt(average), "-" if deviation is None else fmt(deviation),
                  len(found), seeds)


# -- comparison tables -------------------------------------------------------------------------
def _leafwise(skeleton: object, values: list[object], reduce: Reduce) -> object:
    """`skeleton` with each numeric leaf (or None) replaced by `reduce` of the numbers at its place in `values`."""
    if isinstance(skeleton, dict):
        return {key: _leafwise(item, [v.get(key) if isinstance(v, dict) else None for v in values], reduce)
                for key, item in skeleton.items()}
    if skeleton is None or numbers([skeleton]):
        return reduce(numbers(values))
    return skeleton


def _on_skeleton(skeleton: Report, reports: Sequence[Report], reduce: Reduce) -> Report:
    """A report laid out as `skeleton` whose numbers are `reduce` of the `reports`' numbers."""
    return {**skeleton, **{part: _leafwise(skeleton[part], [r.get(part) for r in reports], reduce)
                           for part in _NUMBER_PARTS}}


def mean_over(reports: Sequence[Report]) -> Report:
    """A report laid out as the first of `reports` whose every number is the mean of theirs."""
    return _on_skeleton(reports[0], reports, mean)


def seed_table(render: Callable[[list[Report]], tables.Table], runs: Sequence[Sequence[Report | None]],
               first_number: int) -> tables.Table:
    """`render`'s table of the runs (each: its report in every seed) with columns from `first_number` on
    as mean ± sd over the seeds; the columns before it (run, settings) are the first seed's."""
    seeds = len(runs[0])
    skeletons = [next(r for r in reports if r is not None) for reports in runs]

    def rows(reduce: Reduce, chosen: Callable[[Sequence[Report | None]], list[Report]]) -> list[list[str]]:
        return render([_on_skeleton(s, chosen(reports), reduce) for s, reports in zip(skeletons, runs)])[1]

    header = render(skeletons)[0]
    means, sds = (rows(reduce, lambda reports: [r for r in reports if r is not None]) for reduce in (mean, sd))
    per_seed = [rows(mean, lambda reports, s=s: [reports[s]] if reports[s] is not None else []) for s in range(seeds)]
    combined = [[cell if j < first_number else
                 spread(cell, sd_row[j], sum(seed_rows[i][j] != "-" for seed_rows in per_seed), seeds)
                 for j, cell in enumerate(mean_row)]
                for i, (mean_row, sd_row) in enumerate(zip(means, sds))]
    return header, combined


def main_comparison(runs: Sequence[Sequence[Report | None]]) -> tables.Table:
    """The sweep's main table (as `compare_reports`): run, settings, then the probes' numbers over seeds."""
    def render(reports: list[Report]) -> tables.Table:
        return tables.main_table(reports, with_run_details=True)

    skeletons = [next(r for r in reports if r is not None) for reports in runs]
    settings = len(render(skeletons)[0]) - len(tables.main_table(skeletons)[0]) + 1  # run + details
    return seed_table(render, runs, settings)


def _difference(values: list[float]) -> float | None:
    """A - B from [A, B]; None unless both are numbers."""
    return values[0] - values[1] if len(values) == 2 else None


def paired_differences(pairs: Sequence[tuple[str, Sequence[Report | None], Sequence[Report | None]]]) -> tables.Table:
    """The main table's numbers of A - B per seed, as mean ± sd over the seeds where both runs finished: each
    pair is (label, A's report in every seed, B's). Pairs without a seed where both finished are left out."""
    differences = [(label, [None if a is None or b is None else _on_skeleton(a, [a, b], _difference)
                            for a, b in zip(first, second)]) for label, first, second in pairs]
    kept = [(label, per_seed) for label, per_seed in differences if any(per_seed)]
    if not kept:
        return [], []
    header, rows = seed_table(tables.main_table, [per_seed for _, per_seed in kept], 1)
    return ["A − B", *header[1:]], [[label, *row[1:]] for (label, _), row in zip(kept, rows)]


def per_action_comparison(runs: Sequence[Sequence[Report | None]]) -> tables.Table:
    """Classification per action and run (as the supplement's Table 5) over seeds."""
    return seed_table(tables.per_action_comparison, runs, 2)


# -- training curves ---------------------------------------------------------------------------
def convergence(steps: np.ndarray, loss: np.ndarray, budget: int) -> float | None:
    """c = (m1 - m2) / |m0 - m2|: the share of the run's whole change of loss that its last tenth still made.

    m0, m1 and m2 are the mean loss over the logged steps in (0, 0.1 S], (0.8 S, 0.9 S] and (0.9 S, S],
    S = `budget` (the run's steps). Measured against the whole change rather than the current loss, c
    does not grow as a loss falls towards 0 (a classifier's cross-entropy keeps halving while it
    memorises) and keeps its meaning for losses that are negative. None when a window has fewer than
    2 logged steps, or when the loss ended where it began but moved in between (m0 = m2 != m1).

    Positive c: the loss still fell over the last tenth. |c| < PLATEAU is a plateau, not proof of convergence.
    """
    found = _windows(steps, loss, budget)
    if found is None:
        return None
    start, first, last = (window.mean() for window in found)
    if start == last:
        return 0.0 if first == last else None
    return float((first - last) / abs(start - last))


def last_tenth_in_standard_errors(steps: np.ndarray, loss: np.ndarray, budget: int) -> float | None:
    """z = (m1 - m2) / sqrt(se1² + se2²): the last tenth's fall of loss (windows as in `convergence`) in
    standard errors of the two windows' means (se = sample sd / sqrt(n)): whether the fall that c measures stands
    out of the loss's noise. A c above the plateau threshold with |z| < 2 is mostly noise (a loss that hardly
    falls); a large z with a small c is a real but small fall (z grows with the number of logged steps). Logged
    losses are correlated from step to step, so z overstates; a gauge, not a test. None as for `convergence`,
    or when both windows are constant."""
    found = _windows(steps, loss, budget)
    if found is None:
        return None
    first, last = found[1], found[2]
    error = np.sqrt(first.var(ddof=1) / len(first) + last.var(ddof=1) / len(last))
    return float((first.mean() - last.mean()) / error) if error > 0 else None


def _windows(steps: np.ndarray, loss: np.ndarray, budget: int) -> list[np.ndarray] | None:
    """The logged losses in (0, 0.1 S], (0.8 S, 0.9 S] and (0.9 S, S]; None when one holds fewer than 2."""
    steps, loss = np.asarray(steps, dtype=np.int64), np.asarray(loss, dtype=np.float64)
    masks = [(steps > 0) & (10 * steps <= budget),  # integers: exact window edges
             (10 * steps > 8 * budget) & (10 * steps <= 9 * budget),
             (10 * steps > 9 * budget) & (steps <= budget)]
    return None if any(mask.sum() < 2 for mask in masks) else [loss[mask] for mask in masks]


def relative_curve(curves: Sequence[Curve]) -> Curve | None:
    """The mean over seeds of each loss divided by |its first logged value|, at the steps every seed logged;
    None when no curve has a non-zero first value or the seeds share no step."""
    usable = [(np.asarray(s), np.asarray(v, dtype=np.float64)) for s, v in curves if len(v) and v[0] != 0]
    if not usable:
        return None
    common = usable[0][0]
    for steps, _ in usable[1:]:
        common = np.intersect1d(common, steps)
    if not len(common):
        return None
    scaled = [values[np.isin(steps, common)] / abs(values[0]) for steps, values in usable]
    return common, np.mean(scaled, axis=0)
