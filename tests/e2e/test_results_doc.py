"""The protocol-2 tables of docs/results/README.md against the committed run records: every cell of the 3-seed
summaries and of the wild ablations is recomputed from the records (mean ± sample sd over the seeds, rounded
once) and must read as written, as must the 24000-step cells of the wild seed-0 table."""
from __future__ import annotations

import re
import statistics
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.helpers import markdown_tables
from vava.pipeline.sweep.record import RunRecord, find_records, load_record
from vava.stages.evaluate import seeds as over_seeds

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "docs" / "results" / "README.md"
RECORDS = ROOT / "docs" / "results" / "protocol2" / "records"
SECTION = re.compile(r"^## (Wild|Clean)( ablations)?, 3 seeds, 24000 annealed steps", flags=re.MULTILINE)


def _results(record: RunRecord) -> dict:
    return record.report["results"]


def _targeted(key: str) -> Callable[[RunRecord], float | None]:
    return lambda record: _results(record)["targeted"][key]


def _plan(record: RunRecord) -> float | None:
    mass = record.diagnostics.get("virtual_mass.json")
    return None if mass is None else mass["alignment"]


def _delta(record: RunRecord) -> float | None:
    """Δ val in points: val classification at the end minus at half the budget."""
    return None if record.midpoint is None else 100 * (_results(record)["classification"]["1.0"] - record.midpoint)


PERCENT: dict[str, Callable[[RunRecord], float | None]] = {
    "classification 1.0": lambda record: _results(record)["classification"]["1.0"],
    "align acc DTW": lambda record: _results(record)["alignment"]["dtw"],
    "align acc NN": lambda record: _results(record)["alignment"]["nearest"],
    "plan (VAVA)": _plan,
    "unflagged": _targeted("unflagged_accuracy"),
    "out of order": _targeted("out_of_order_accuracy"),
    "repeated": _targeted("repeated_accuracy"),
    "background F1": _targeted("background_f1"),
    "idle bg": _targeted("idle_background_accuracy"),
    "cut-away bg": _targeted("cutaway_background_accuracy"),
    "distraction bg": _targeted("distraction_background_accuracy"),
}


def _number(values: list[float], digits: int = 1) -> str:
    """Mean ± sample sd, or the value alone where every seed gives the same; `(n=k)` if not every seed has one."""
    if not values:
        return "-"
    text = f"{values[0]:.{digits}f}" if len(set(values)) == 1 else (
        f"{statistics.mean(values):.{digits}f} ± {statistics.stdev(values):.{digits}f}")
    return text if len(values) == 3 else f"{text} (n={len(values)})"


def _cell(column: str, records: list[RunRecord]) -> str:
    if column in PERCENT:
        return _number([100 * v for v in map(PERCENT[column], records) if v is not None])
    if column == "c":
        return _number([r.convergence for r in records if r.convergence is not None], digits=3)
    if column == "Δ val":
        return _number([d for d in map(_delta, records) if d is not None])
    passed = {"loss plateau": lambda r: abs(r.convergence) < over_seeds.PLATEAU,
              "val plateau": lambda r: abs(_delta(r)) < over_seeds.VAL_PLATEAU}[column]
    trained = [r for r in records if r.trained]
    return f"{sum(map(passed, trained))}/{len(trained)}" if trained else "-"


def _paired_cell(column: str, pairs: list[tuple[RunRecord, RunRecord]]) -> str:
    values = [(PERCENT[column](a), PERCENT[column](b)) for a, b in pairs]
    return _number([100 * (a - b) for a, b in values if a is not None and b is not None])


def _sections() -> list[tuple[str, str, str]]:
    """(name, setting, text) of each protocol-2 section of the results page: an ablation section's name
    ends in "-ablations", its setting (whose records it reads) does not."""
    text = RESULTS.read_text()
    sections = []
    for match in SECTION.finditer(text):
        end = text.find("\n## ", match.start() + 1)
        setting = match.group(1).lower()
        name = setting + ("-ablations" if match.group(2) else "")
        sections.append((name, setting, text[match.start():] if end < 0 else text[match.start():end]))
    return sections


def _records(setting: str) -> dict[str, list[RunRecord]]:
    by_name: dict[str, list[RunRecord]] = {}
    for path in find_records(RECORDS / setting):
        record = load_record(path)
        by_name.setdefault(record.name, []).append(record)
    return by_name


def test_the_results_page_has_a_protocol_2_summary_per_setting_and_the_wild_ablations() -> None:
    assert [name for name, _, _ in _sections()] == ["wild", "clean", "wild-ablations"]


@pytest.mark.parametrize("setting, section", [pytest.param(s, text, id=name) for name, s, text in _sections()])
def test_every_summary_cell_is_what_the_records_give(setting: str, section: str) -> None:
    records = _records(setting)
    wrong, checked = [], 0
    for header, *rows in markdown_tables(section):
        for row in rows:
            if header[0] == "run":
                expected = [_cell(column, records[row[0]]) for column in header[1:]]
            elif header[0] == "A − B (points)":
                a, b = (records[name] for name in row[0].split(" − "))
                pairs = [(x, y) for x in a for y in b if x.seed == y.seed]
                expected = [_paired_cell(column, pairs) for column in header[1:]]
            else:
                continue
            checked += 1
            wrong += [(row[0], column, written, want)
                      for column, written, want in zip(header[1:], row[1:], expected) if written != want]
    assert checked > 0
    assert wrong == []


def test_the_seed_0_table_at_24000_steps_is_what_the_records_give() -> None:
    """The 24000-step half of the wild seed-0 table (3000 steps beside 24000): val classification, DTW, c, Δ."""
    text = RESULTS.read_text()
    header, *rows = markdown_tables(text[text.index("\n### Seed 0 at 3000 and 24000 steps"):])[0]
    first = header.index("24000, annealed: val cls")
    records = _records("wild")
    seed_0 = [next(r for r in records[row[0]] if r.seed == 0) for row in rows]
    expected = [[f"{100 * _results(r)['classification']['1.0']:.1f}", f"{100 * _results(r)['alignment']['dtw']:.1f}",
                 f"{r.convergence:+.3f}", f"{_delta(r):+.1f}"] for r in seed_0]
    assert len(rows) == 10
    assert [row[first:first + 4] for row in rows] == expected
