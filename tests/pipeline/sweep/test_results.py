"""A sweep's results (pipeline/sweep/results.py): a seeded sweep's folders and its numbers as mean ± sd over the
seeds, results.md byte for byte, summary tables from the probes and the diagnostics."""
from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest

from tests.helpers import markdown_tables
from tests.pipeline.sweep.helpers import SEEDS, seeded_again
from tests.stages.evaluate.helpers import wild_report
from vava.core.run_folder import load_checkpoint
from vava.pipeline import sweep
from vava.pipeline.diagnostics import Diagnostic
from vava.pipeline.sweep import results as sweep_results
from vava.pipeline.sweep import run as sweep_run
from vava.pipeline.sweep.record import RunRecord
from vava.stages.evaluate.probes.base import Metric, Probe, Summary
from vava.stages.evaluate.report import write_report

# -- --seeds: one sweep per seed in OUT/seed-S, numbers as mean ± sd over the seeds ------------------

def table(markdown: str, heading: str, keys: int = 1) -> dict[tuple[str, ...], dict[str, str]]:
    """The rows of the first table under the heading that starts with `heading`, by their first `keys` cells
    (unescaped)."""
    lines = markdown.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(heading))
    header, *rows = markdown_tables("\n".join(lines[start + 1:]))[0]
    return {tuple(row[:keys]): dict(zip(header, row)) for row in rows}


def test_seeds_make_one_sweep_per_seed_folder(seeded: tuple[Path, Path, Path], tmp_path: Path) -> None:
    out = seeded[2]
    assert sorted(p.name for p in out.iterdir()) == ["loss_curves.png", "seed-0", "seed-1", "seed-2"]
    for seed in SEEDS:
        folder = out / f"seed-{seed}"
        assert sorted(p.name for p in folder.iterdir()) == ["pooled", "results.md", "vava"]
        assert load_checkpoint(folder / "vava" / "checkpoints")["config"]["seed"] == seed
        assert json.loads((folder / "vava" / "sweep_key.json").read_text())["config"]["seed"] == seed
        assert json.loads((folder / "pooled" / "sweep_key.json").read_text())["config"] is None  # identity: no seed
        assert (folder / "vava" / "plots" / "loss.png").is_file() and (folder / "pooled" / "report.json").is_file()
        assert f"## all runs (seed {seed}: one seed, no sd)" in (folder / "results.md").read_text()
        assert (folder / "vava" / "report-step10.json").is_file()  # the midpoint of its 20 steps, scored
    copy = tmp_path / "runs"
    shutil.copytree(out, copy, symlinks=True)
    (copy / "seed-1" / "vava" / "report-step10.json").unlink()  # as in a run finished before the val plateau test
    markdown, failed, lines = seeded_again(seeded, copy)
    assert (copy / "seed-1" / "vava" / "report-step10.json").is_file()  # scored again while the run is reused
    assert not failed and lines == [line for seed in SEEDS for line in (
        f"seed {seed}: {copy / f'seed-{seed}'}", "[1/2] pooled: report exists, reused", "[2/2] vava: report exists, reused")]
    assert "## all runs (mean ± sd over 3 seeds: 0, 1, 2)" in markdown
    pooled = table(markdown, "## all runs")[("pooled",)]
    assert pooled["Classification 1.0"] == "100.00 ± 0.00"  # identity rows are the same in every seed


def write_seed(run_dir: Path, accuracy: float, per_action: tuple[float, float], targeted: dict | None,
               losses: list[float], virtual_mass: str | None, midpoint: float) -> None:
    """Hand-written numbers in a finished run of the seeded sweep (its key untouched, so it is reused);
    `midpoint`: the val classification of its checkpoint at S/2."""
    half = json.loads((run_dir / "report-step10.json").read_text())
    half["results"]["classification"]["1.0"] = midpoint
    (run_dir / "report-step10.json").write_text(json.dumps(half))
    report = json.loads((run_dir / "report.json").read_text())
    report["results"]["classification"]["1.0"] = accuracy
    for action, value in zip("ab", per_action):
        report["per_action"][action]["classification"]["1.0"] = value
    report["results"].pop("targeted", None)
    if targeted is not None:
        report["results"]["targeted"] = targeted
    report["results"]["alignment"] = {"dtw": accuracy / 2, "nearest": None,
                                      "dtw_background": {"idle": accuracy, "cutaway": None, "distraction": None}}
    (run_dir / "report.json").write_text(json.dumps(report))
    with open(run_dir / "train_log.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["step", "loss", "lr", "steps_per_s"])
        writer.writerows([step, loss, 1e-4, 1.0] for step, loss in enumerate(losses, start=1))
    (run_dir / "virtual_mass.json").unlink(missing_ok=True)
    if virtual_mass is not None:
        (run_dir / "virtual_mass.json").write_text(virtual_mass)


def test_seeded_results_are_mean_and_sample_sd_of_hand_written_reports(
        seeded: tuple[Path, Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "runs"
    shutil.copytree(seeded[2], out, symlinks=True)
    write_seed(out / "seed-0" / "vava", 0.5, (0.4, 0.6),
               {"unflagged_accuracy": 0.8, "out_of_order_accuracy": None, "repeated_accuracy": 0.5,
                "background_f1": 0.9}, [2.0] * 2 + [1.5] * 14 + [1.6, 1.4, 1.1, 0.9],  # c = (1.5 - 1) / (2 - 1)
               '{"background": 0.6, "procedure": 0.1, "pairs": 4, "alignment": 0.4, '
               '"alignment_background": {"idle": 0.9}}', midpoint=0.45)
    write_seed(out / "seed-1" / "vava", 0.6, (0.5, 0.7),
               {"unflagged_accuracy": 0.9, "out_of_order_accuracy": None, "repeated_accuracy": None,
                "background_f1": 0.7}, [1.0] * 20,  # c = 0
               '{"background": 0.6, "procedur', midpoint=0.595)  # damaged: not read
    write_seed(out / "seed-2" / "vava", 0.7, (0.6, 0.8), None, [2.0] * 2 + [1.0] * 16 + [1.01] * 2,  # c = -0.01/0.99
               '{"background": 0.8, "procedure": 0.3, "pairs": 4}', midpoint=0.7)

    markdown, failed, _ = seeded_again(seeded, out)
    assert not failed
    assert table(markdown, "## all runs")[("vava",)]["Classification 1.0"] == "60.00 ± 10.00"
    per_action = table(markdown, "### all runs: per action", keys=2)
    assert per_action[("a", "vava")]["Classification 1.0"] == "50.00 ± 10.00"
    assert per_action[("b", "vava")]["Classification 1.0"] == "70.00 ± 10.00"
    one_seed = (out / "seed-0" / "results.md").read_text()  # one seed: the value, no sd
    assert table(one_seed, "## all runs (seed 0")[("vava",)]["Classification 1.0"] == "50.00"
    targeted = table(markdown, "## Targeted wild metrics (%) (mean ± sd over 3 seeds: 0, 1, 2)")
    assert targeted[("vava",)] == {
        "Run": "vava", "Unflagged acc": "85.00 ± 7.07 (n=2)", "Out-of-order acc": "-",
        "Repeated acc": "50.00 (n=1)", "Background F1": "80.00 ± 14.14 (n=2)", "Idle bg acc": "-",
        "Cut-away bg acc": "-", "Distraction bg acc": "-",
        "Virtual mass: background": "70.00 ± 14.14 (n=2)", "Virtual mass: procedure": "20.00 ± 14.14 (n=2)"}
    assert targeted[("pooled",)]["Virtual mass: background"] == "-"
    alignment = table(markdown, "## Alignment accuracy (%) (mean ± sd over 3 seeds: 0, 1, 2)")
    assert alignment[("vava",)] == {  # DTW: half the classification value of each seed; plan: seed 0's file alone
        "Run": "vava", "DTW": "30.00 ± 5.00", "NN": "-", "DTW, idle bg": "60.00 ± 10.00", "DTW, cutaway bg": "-",
        "DTW, distraction bg": "-", "Plan (VAVA)": "40.00 (n=1)", "Plan, idle bg": "90.00 (n=1)",
        "Plan, cutaway bg": "-", "Plan, distraction bg": "-"}
    convergence = table(markdown, "## Convergence")
    assert list(convergence) == [("vava",)]  # identity runs do not train
    assert convergence[("vava",)] == {  # val: 45 -> 50, 59.5 -> 60, 70 -> 70; a plateau where |change| < 1 point
        "Run": "vava", "c": "0.1633 ± 0.2916", "Plateau (-0.02 < c < 0.02), seeds": "2/3",
        "Last tenth's fall (SE)": "3.5 (n=1)",  # seed 0: 0.5 / sqrt(0.02 / 2 + 0.02 / 2); the others: no noise
        "Val cls 1.0 at half budget": "58.17 ± 12.55", "Δ val cls 1.0 (full - half)": "1.83 ± 2.75",
        "Val plateau (|Δ| < 1), seeds": "2/3"}
    assert "Runs that fail the loss plateau test:\n\n- seed-0/vava: c +0.500, last tenth's fall +3.5 SE, " \
           "Δ +5.00 points\n" in markdown

    # a run missing in a seed: its cells show their n; the failure is named with its seed folder
    (out / "seed-2" / "vava" / "report.json").write_text("damaged")
    real_embed = sweep_run.embed

    def embed(run_dir: Path, *args: object, **kwargs: object) -> Path:
        if Path(run_dir) == out / "seed-2" / "vava":
            raise RuntimeError("boom")
        return real_embed(run_dir, *args, **kwargs)

    monkeypatch.setattr(sweep_run, "embed", embed)
    markdown, failed, _ = seeded_again(seeded, out)
    assert failed == {"seed-2/vava": "RuntimeError: boom"} and "- seed-2/vava: RuntimeError: boom" in markdown
    assert table(markdown, "## all runs")[("vava",)]["Classification 1.0"] == "55.00 ± 7.07 (n=2)"
    assert table(markdown, "## all runs")[("pooled",)]["Classification 1.0"] == "100.00 ± 0.00"
    assert table(markdown, "## Targeted")[("vava",)]["Virtual mass: background"] == "60.00 (n=1)"
    assert table(markdown, "## Convergence")[("vava",)]["c"] == "0.2500 ± 0.3536 (n=2)"
    assert table(markdown, "## Convergence")[("vava",)]["Val plateau (|Δ| < 1), seeds"] == "1/2"


def scaled(values: object, factor: float) -> object:
    """`values` with every number times `factor` (a seed's other numbers)."""
    if isinstance(values, dict):
        return {key: scaled(value, factor) for key, value in values.items()}
    return values * factor if isinstance(values, float) else values


def test_results_markdown_is_unchanged_byte_for_byte(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every table of a sweep's results (main, per action, targeted, alignment, convergence, timings, failures)
    over hand-made finished runs in two seeds; a change of layout on purpose rewrites expected_results.md."""
    report = wild_report(tmp_path)
    plan = sweep.SweepPlan(None, [sweep.SweepRun("time", identity="time"), sweep.SweepRun("vava", "vava"),
                                  sweep.SweepRun("broken", "vava")], {"objectives": ["time", "vava"]})
    folders = {seed: tmp_path / f"seed-{seed}" for seed in (0, 1)}
    for seed, folder in folders.items():
        for name, attrs, factor in (("time", {"embedder": "identity", "identity_kind": "time"}, 0.9),
                                    ("vava", {}, 1.0)):
            run_dir = folder / name
            write_report(run_dir, {**report, "attrs": {**report["attrs"], **attrs, "run": name},
                                   "results": scaled(report["results"], factor - 0.1 * seed)})
            (run_dir / "sweep_time.json").write_text(json.dumps({"seconds": 10.0 + seed}))
        vava = folder / "vava"
        (vava / "sweep_key.json").write_text(json.dumps({"config": {"steps": 20}}))
        (vava / "train_log.csv").write_text("step,loss\n" + "".join(f"{s},{2 - s / 20 - seed / 10}\n"
                                                                   for s in range(1, 21)))
        (vava / "virtual_mass.json").write_text(json.dumps(
            {"background": 0.6 + seed / 10, "procedure": 0.1, "pairs": 4, "alignment": 0.4,
             "alignment_background": {"idle": 0.9 - seed / 10, "cutaway": None, "distraction": None}}))
    monkeypatch.setattr(sweep_results.sys, "argv", ["vava", "sweep", "--plan", "plan.yaml"])
    runs = sweep_results.folder_records(folders, plan, {folders[1]: {"broken": "VavaError: boom"}})
    markdown = sweep_results.records_markdown(runs, [0, 1], plan, {"seed-1/broken": "VavaError: boom"})
    assert markdown == Path(__file__).with_name("expected_results.md").read_text()


class Norms(Probe):
    """A probe with a summary table only: the sweep reads its numbers from the reports."""

    name = "norms"

    @classmethod
    def summary(cls) -> Summary:
        return Summary("Norms (%)", (Metric("Mean", ("norms", "mean")), Metric("Max", ("norms", "max"))))


def test_summary_tables_come_from_the_probes_with_the_diagnostics_numbers(tmp_path: Path,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sweep_results, "PROBES", {"norms": Norms})
    toy = Diagnostic("toy.json", lambda run_dir: None, {"norms": (Metric("Toy", ("value",)),)})
    monkeypatch.setattr(sweep_results, "DIAGNOSTICS", {"toy": toy, "other": Diagnostic("other.json", toy.run, {})})
    key = {"features": "f", "config": None}
    runs = {"a": [RunRecord("a", 0, key, {"results": {"norms": {"mean": 0.5, "max": None}}},
                            diagnostics={"toy.json": {"value": 0.25}}),
                  RunRecord("a", 1, key, {"results": {"norms": {"mean": 0.7}}},
                            diagnostics={"toy.json": {"value": 0.75}})],
            "ref": [None, RunRecord("ref", 1, key, {"results": {}})]}
    assert sweep_results._summary_tables(runs, 2, " (over 2 seeds)") == [
        "## Norms (%) (over 2 seeds)\n\n| Run | Mean | Max | Toy |\n| --- | --- | --- | --- |\n"
        "| a | 60.00 ± 14.14 | - | 50.00 ± 35.36 |\n| ref | - | - | - |\n"]


def test_differences_are_paired_by_seed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    report = wild_report(tmp_path)

    def record(name: str, seed: int, accuracy: float) -> RunRecord:
        classification = {**report["results"]["classification"], "1.0": accuracy}
        return RunRecord(name, seed, {"features": "f", "config": None},
                         {**report, "results": {**report["results"], "classification": classification}})

    runs = {"a": [record("a", 0, 0.5), record("a", 1, 0.7), record("a", 2, 0.9)],
            "b": [record("b", 0, 0.4), record("b", 1, 0.5), None]}
    plan = sweep.SweepPlan(None, [sweep.SweepRun(name, "vava") for name in "abc"], {"t": ["a", "b"]},
                           {"a against b": [("a", "b"), ("b", "a"), ("a", "c")]})
    monkeypatch.setattr(sweep_results.sys, "argv", ["vava", "gather"])
    markdown = sweep_results.records_markdown(runs, [0, 1, 2], plan, {})
    rows = table(markdown, "## a against b (mean ± sd over 3 seeds: 0, 1, 2)")
    assert list(rows) == [("a − b",), ("b − a",)]  # a - c: c never finished
    assert rows[("a − b",)]["Classification 1.0"] == "15.00 ± 7.07 (n=2)"  # seeds 0 and 1: 10 and 20 points
    assert rows[("b − a",)]["Classification 1.0"] == "-15.00 ± 7.07 (n=2)"
    assert rows[("a − b",)]["τ"] == "0.0000 ± 0.0000 (n=2)"  # the same number in both runs
    only_c = sweep_results.records_markdown(runs, [0, 1, 2], sweep.SweepPlan(None, plan.runs, {"t": ["a"]},
                                                                           {"c": [("a", "c")]}), {})
    assert "## c (mean ± sd over 3 seeds: 0, 1, 2)\n\nEach row" in only_c
    assert "(no seed where both runs of a pair finished)" in only_c
