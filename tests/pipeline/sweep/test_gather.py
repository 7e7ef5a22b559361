"""Run records (pipeline/sweep/record.py) and `vava gather` (pipeline/sweep/gather.py): the records a sweep
writes rebuild its tables from other folders, and records that would mix what a sweep never mixes are refused."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from tests.pipeline.sweep.helpers import SEEDS, seeded_again
from tests.stages.evaluate.helpers import wild_report
from vava.core.errors import VavaError
from vava.pipeline.cli import main
from vava.pipeline.sweep import RECORD_NAME, RunRecord, gather_records, load_plan, load_record, write_record
from vava.pipeline.sweep.record import MAX_CURVE_POINTS, thinned_curve


def copy_records(out: Path, target: Path, seeds: tuple[int, ...]) -> None:
    """Only the record files of `seeds`' run folders, in the same layout (what a user keeps of a sweep)."""
    for seed in seeds:
        for record in (out / f"seed-{seed}").glob(f"*/{RECORD_NAME}"):
            (target / record.parent.relative_to(out)).mkdir(parents=True)
            shutil.copy(record, target / record.relative_to(out))


def without_command(markdown: str) -> str:
    return markdown.split("\n", 1)[1]


def test_records_of_a_sweep_split_across_folders_gather_into_the_sweeps_own_tables(
        seeded: tuple[Path, Path, Path], tmp_path: Path) -> None:
    _, plan, out = seeded
    for seed in SEEDS:
        record = load_record(out / f"seed-{seed}" / "vava" / RECORD_NAME)
        assert (record.name, record.seed, record.trained) == ("vava", seed, True)
        assert record.key == json.loads((out / f"seed-{seed}" / "vava" / "sweep_key.json").read_text())
        assert record.report == json.loads((out / f"seed-{seed}" / "vava" / "report.json").read_text())
        logged = np.loadtxt(out / f"seed-{seed}" / "vava" / "train_log.csv", delimiter=",", skiprows=1, ndmin=2)
        assert record.loss == ([int(s) for s in logged[:, 0]], [float(v) for v in logged[:, 1]])  # few: all kept
        assert record.midpoint is not None and record.seconds is not None
        assert set(record.diagnostics) == {"virtual_mass.json"}
        assert not load_record(out / f"seed-{seed}" / "pooled" / RECORD_NAME).trained
    copy_records(out, tmp_path / "machine-a", (0,))
    copy_records(out, tmp_path / "machine-b", (1, 2))
    (tmp_path / "machine-b" / "seed-9" / "other").mkdir(parents=True)  # a run the plan does not name: left out
    data = json.loads((out / "seed-0" / "vava" / RECORD_NAME).read_text())
    (tmp_path / "machine-b" / "seed-9" / "other" / RECORD_NAME).write_text(json.dumps({**data, "name": "other",
                                                                                         "seed": 9}))
    result = CliRunner().invoke(main, ["gather", "--plan", str(plan), "--out", str(tmp_path / "tables.md"),
                                       "--loss-curves", str(tmp_path / "loss.png"),
                                       str(tmp_path / "machine-a"), str(tmp_path / "machine-b")])
    assert result.exit_code == 0, result.output
    gathered = (tmp_path / "tables.md").read_text()
    shutil.copytree(out, tmp_path / "again", symlinks=True)
    sweeps_own, _, _ = seeded_again(seeded, tmp_path / "again")  # every run reused: the sweep's tables
    assert without_command(gathered) == without_command(sweeps_own)
    assert "(mean ± sd over 3 seeds: 0, 1, 2)" in gathered and (tmp_path / "loss.png").stat().st_size > 0


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> dict:
    return wild_report(tmp_path_factory.mktemp("report"))


def test_a_record_reads_back_as_written_and_its_curve_is_thinned_evenly(tmp_path: Path, report: dict) -> None:
    steps, loss = np.arange(10, 24010, 10), np.linspace(3.0, 1.0, 2400)
    kept_steps, kept_loss = thinned_curve(steps, loss)
    assert len(kept_steps) == MAX_CURVE_POINTS and kept_steps[0] == 10 and kept_steps[-1] == 24000
    assert kept_steps[1] == 100  # index round(2399 / 255) = 9: step 100
    assert kept_loss == [float(loss[steps == s][0]) for s in kept_steps]
    assert thinned_curve(np.array([1, 2, 3]), np.array([1.0, 0.5, 0.25])) == ([1, 2, 3], [1.0, 0.5, 0.25])
    record = RunRecord("vava", 2, {"features": "f" * 16, "config": {"seed": 2, "steps": 20}}, report,
                       12.5, 0.01, 0.5, (kept_steps, kept_loss), {"virtual_mass.json": {"background": 0.5}})
    (tmp_path / "vava").mkdir()
    assert load_record(write_record(tmp_path / "vava", record)) == record


def _write(folder: Path, report: dict, **changes: object) -> Path:
    """A record of run vava (seed 0 unless changed) in folder/NAME-SEED/, with `changes` to its fields."""
    fields = {"name": "vava", "seed": 0, "key": {"features": "a" * 16, "config": {"seed": 0, "steps": 20}},
              "report": report, **changes}
    record = RunRecord(**fields)
    run_dir = folder / f"{record.name}-{record.seed}"
    run_dir.mkdir(parents=True)
    return write_record(run_dir, record)


PLAN = "runs:\n  vava: {objective: vava}\n"


@pytest.fixture()
def plan(tmp_path: Path) -> Path:
    path = tmp_path / "plan.yaml"
    path.write_text(PLAN)
    return path


def test_records_that_a_sweep_would_not_mix_are_refused_naming_both_files(tmp_path: Path, plan: Path,
                                                                           report: dict) -> None:
    first = _write(tmp_path / "a", report)
    twin = _write(tmp_path / "b", report)
    with pytest.raises(VavaError) as caught:
        gather_records([tmp_path / "a", tmp_path / "b"], load_plan(str(plan)))
    assert str(caught.value) == f"{first} and {twin}: two records of run vava, seed 0; gather one of them"
    shutil.rmtree(twin.parent)
    other = _write(tmp_path / "b", report, seed=1, key={"features": "b" * 16, "config": {"seed": 1, "steps": 20}})
    with pytest.raises(VavaError) as caught:
        gather_records([tmp_path / "a", tmp_path / "b"], load_plan(str(plan)))
    assert str(caught.value) == (f"{other} is a run on feature set {'b' * 16}, {first} on {'a' * 16}: gather the "
                                 "records of one feature set")
    shutil.rmtree(other.parent)
    longer = _write(tmp_path / "b", report, seed=1, key={"features": "a" * 16, "config": {"seed": 1, "steps": 40}})
    with pytest.raises(VavaError) as caught:
        gather_records([tmp_path / "a", tmp_path / "b"], load_plan(str(plan)))
    assert str(caught.value) == (f"{first} and {longer}: run vava was built with other settings (their sweep keys "
                                 "differ in config.steps)")
    shutil.rmtree(longer.parent)
    unseeded = _write(tmp_path / "b", report, seed=None)
    with pytest.raises(VavaError) as caught:
        gather_records([tmp_path / "a", tmp_path / "b"], load_plan(str(plan)))
    assert str(caught.value) == f"{unseeded} and {first}: one is a run of a sweep with --seeds, the other not"
    shutil.rmtree(unseeded.parent)
    second = _write(tmp_path / "b", report, seed=1, key={"features": "a" * 16, "config": {"seed": 1, "steps": 20}})
    runs, seeds = gather_records([tmp_path / "a", tmp_path / "b"], load_plan(str(plan)))
    assert seeds == [0, 1] and [r.seed for r in runs["vava"]] == [0, 1]
    assert load_record(second).key["config"]["seed"] == 1


@pytest.mark.parametrize(("change", "reason"), [
    (lambda d: "{", "not a readable sweep record (Expecting property name enclosed in double quotes: line 1 column 2 "
                    "(char 1))"),
    (lambda d: [], "not a vava sweep record (expected a JSON object, got list)"),
    (lambda d: {**d, "format": 2}, "not a vava sweep record (format 2, this version reads format 1)"),
    (lambda d: {**d, "extra": 1}, "not a vava sweep record (expected the fields format, name, seed, key, report, "
                                  "seconds, convergence, midpoint, loss, diagnostics)"),
    (lambda d: {**d, "name": "../x"}, "not a vava sweep record (name: '../x' must be a plain name, without '/' or "
                                      "'\\')"),
    (lambda d: {**d, "seed": True}, "not a vava sweep record (seed: expected null or an integer in "
                                    "[0, 18446744073709551616], got True)"),
    (lambda d: {**d, "key": {"config": None}}, "not a vava sweep record (key: expected a sweep key (features, "
                                               "config))"),
    (lambda d: {**d, "report": {"results": {}}}, "not a vava sweep record (report: not a vava report (KeyError: "
                                                 "'options'))"),
    (lambda d: {**d, "seconds": "12"}, "not a vava sweep record (seconds: expected null or a number, got '12')"),
    (lambda d: {**d, "loss": {"steps": [2, 1], "loss": [1.0, 0.5]}}, "not a vava sweep record (loss: steps must "
                                                                    "increase)"),
    (lambda d: {**d, "loss": {"steps": [1], "loss": [1.0, 0.5]}}, "not a vava sweep record (loss: steps (integers) "
                                                                 "and loss (numbers) must be lists of one length)"),
    (lambda d: {**d, "diagnostics": {"x.json": 1}}, "not a vava sweep record (diagnostics: expected an object of "
                                                    "objects)"),
])
def test_a_damaged_or_forged_record_is_a_one_line_error_naming_the_file(
        tmp_path: Path, plan: Path, report: dict, change: object, reason: str) -> None:
    path = _write(tmp_path / "a", report)
    changed = change(json.loads(path.read_text()))
    path.write_text(changed if isinstance(changed, str) else json.dumps(changed))
    result = CliRunner().invoke(main, ["gather", "--plan", str(plan), "--out", str(tmp_path / "t.md"),
                                       str(tmp_path / "a")])
    assert result.exit_code == 1 and result.output == f"Error: {path}: {reason}\n"
    assert not (tmp_path / "t.md").exists()


def test_links_are_not_followed_and_no_record_is_an_error(tmp_path: Path, plan: Path, report: dict) -> None:
    _write(tmp_path / "elsewhere", report)
    (tmp_path / "a" / "run").mkdir(parents=True)
    (tmp_path / "a" / "linked").symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    (tmp_path / "a" / "run" / RECORD_NAME).symlink_to(tmp_path / "elsewhere" / "vava-0" / RECORD_NAME)
    result = CliRunner().invoke(main, ["gather", "--plan", str(plan), "--out", str(tmp_path / "t.md"),
                                       str(tmp_path / "a")])
    assert result.exit_code == 1 and result.output == (
        f"Error: no record of a run of the plan under {tmp_path / 'a'} (records are the sweep_record.json files "
        "that vava sweep writes into each run folder)\n")
    result = CliRunner().invoke(main, ["gather", "--plan", str(plan), "--out", str(tmp_path / "t.txt"),
                                       str(tmp_path / "elsewhere")])
    assert result.exit_code == 2 and f"Invalid value for --out: {tmp_path / 't.txt'} does not end in .md" \
        in result.output
