"""Run records (pipeline/sweep/record.py) and `vava gather` (pipeline/sweep/gather.py): the records a sweep
writes rebuild its tables from other folders, and records that would mix what a sweep never mixes are refused."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from tests.pipeline.sweep.helpers import SEEDED_TINY, SEEDS, STEPS, seeded_again
from tests.stages.evaluate.helpers import wild_report
from vava.core.errors import VavaError
from vava.pipeline.cli import main
from vava.pipeline.sweep import RECORD_NAME, RunRecord, gather_records, load_plan, load_record, run_sweep, write_record
from vava.pipeline.sweep import run as sweep_run
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
    record = RunRecord("vava", 2, _key(2), report, 12.5, 0.01, 0.5, (kept_steps, kept_loss),
                       {"virtual_mass.json": {"background": 0.5}}, loss_fall_se=3.25)
    (tmp_path / "vava").mkdir()
    path = write_record(tmp_path / "vava", record)
    assert load_record(path) == record
    older = {key: value for key, value in json.loads(path.read_text()).items() if key != "loss_fall_se"}
    path.write_text(json.dumps({**older, "format": 1}))  # a record of format 1 (before loss_fall_se) still reads
    assert load_record(path) == RunRecord(**{**record.__dict__, "loss_fall_se": None})


def _key(seed: int | None = 0, features: str = "a" * 16, **config: object) -> dict:
    """A trained vava run's sweep key."""
    return {"features": features, "config": {"objective": "vava", "seed": seed, "steps": 20, **config}}


def _write(folder: Path, report: dict, **changes: object) -> Path:
    """A record of run vava (seed 0 unless changed) in folder/NAME-SEED/, with `changes` to its fields."""
    record = RunRecord(**{"name": "vava", "seed": 0, "key": _key(), "report": report, **changes})
    run_dir = folder / f"{record.name}-{record.seed}"
    run_dir.mkdir(parents=True)
    return write_record(run_dir, record)


PLAN = "runs:\n  time: {identity: time}\n  vava: {objective: vava}\n"


@pytest.fixture()
def plan(tmp_path: Path) -> Path:
    path = tmp_path / "plan.yaml"
    path.write_text(PLAN)
    return path


@pytest.mark.parametrize(("second", "message"), [
    ({}, "{first} and {second}: two records of run vava, seed 0; gather one of them"),
    ({"seed": 1, "key": _key(1, "b" * 16)}, "{second} is a run on feature set bbbbbbbbbbbbbbbb, {first} on "
                                            "aaaaaaaaaaaaaaaa: gather the records of one feature set"),
    ({"seed": 1, "key": _key(1, steps=40)}, "{first} and {second}: run vava was built with other settings (their "
                                            "sweep keys differ in config.steps)"),
    ({"seed": None, "key": _key(None)}, "{second} and {first}: one is a run of a sweep with --seeds, the other not"),
    ({"seed": 1}, "{second}: its seed 1 is not its config's seed 0"),
    ({"seed": 1, "key": _key(1, objective="tcc")}, "{second}: run vava of the plan trains vava, this record's run "
                                                   "does not"),
    ({"seed": 1, "name": "time"}, "{second}: run time of the plan is the reference row time, this record is not"),
])
def test_records_that_a_sweep_would_not_mix_are_refused_naming_the_files(
        tmp_path: Path, plan: Path, report: dict, second: dict, message: str) -> None:
    first = _write(tmp_path / "a", report)
    other = _write(tmp_path / "b", report, **second)
    with pytest.raises(VavaError) as caught:
        gather_records([tmp_path / "a", tmp_path / "b"], load_plan(str(plan)))
    assert str(caught.value) == message.format(first=first, second=other)


def test_gathered_seeds_and_the_runs_without_a_record(tmp_path: Path, plan: Path, report: dict) -> None:
    _write(tmp_path / "a", report)
    _write(tmp_path / "b", report, seed=2, key=_key(2))
    gathered = gather_records([tmp_path / "a", tmp_path, tmp_path / "b"], load_plan(str(plan)))  # overlapping
    assert gathered.seeds == [0, 2] and [r.seed for r in gathered.runs["vava"]] == [0, 2]
    assert list(gathered.runs) == ["vava"] and gathered.missing == ["seed-0/time", "seed-2/time"]
    result = CliRunner().invoke(main, ["gather", "--plan", str(plan), "--out", str(tmp_path / "t.md"),
                                       "--loss-curves", str(tmp_path / "l.png"), str(tmp_path)])
    assert result.exit_code == 0 and not (tmp_path / "l.png").exists()  # no record has a loss: nothing to draw
    assert f"{tmp_path / 'l.png'}: not written, no trained run has a logged loss" in result.output
    assert (tmp_path / "t.md").read_text().endswith("## Runs without a record\n\nseed-0/time, seed-2/time\n")


@pytest.mark.parametrize(("change", "reason"), [
    (lambda d: "{", "not a readable sweep record (Expecting property name enclosed in double quotes: line 1 column 2 "
                    "(char 1))"),
    (lambda d: [], "not a vava sweep record (expected a JSON object, got list)"),
    (lambda d: {**d, "format": 3}, "not a vava sweep record (format 3, this version reads formats 1, 2)"),
    (lambda d: {**d, "format": "2"}, "not a vava sweep record (format '2', this version reads formats 1, 2)"),
    (lambda d: {**d, "extra": 1}, "not a vava sweep record (expected the fields format, name, seed, key, report, "
                                  "seconds, convergence, midpoint, loss, diagnostics, loss_fall_se)"),
    (lambda d: {**d, "format": 1}, "not a vava sweep record (expected the fields format, name, seed, key, report, "
                                   "seconds, convergence, midpoint, loss, diagnostics)"),  # format 1 had no z
    (lambda d: {**d, "loss_fall_se": [1]}, "not a vava sweep record (loss_fall_se: expected null or a number, "
                                           "got [1])"),
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
    (lambda d: {**d, "seconds": -1.0}, "not a vava sweep record (seconds: expected null or a number >= 0, got -1.0)"),
    (lambda d: {**d, "diagnostics": {"x.json": {"v": 10 ** 400}}}, "not a vava sweep record (an integer of 401 digits "
                                                                   "is not a finite number)"),
    (lambda d: json.dumps(d).replace('"results": {', '"results": {"odd": NaN, ', 1),
     "not a vava sweep record (nan is not a finite number)"),
    (lambda d: "[" * 100000 + "]" * 100000, "not a readable sweep record (nested too deeply)"),
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


def test_an_output_folder_that_cannot_be_made_is_a_one_line_error_and_nothing_is_written(
        tmp_path: Path, plan: Path, report: dict) -> None:
    record = _write(tmp_path / "a", report)  # a file: no folder can be made below it
    for unmakeable, options in ((record / "t.md", ["--out", str(record / "t.md")]),
                                (record / "l.png", ["--out", str(tmp_path / "t.md"), "--loss-curves",
                                                    str(record / "l.png")])):
        result = CliRunner().invoke(main, ["gather", "--plan", str(plan), *options, str(tmp_path / "a")])
        assert result.exit_code == 1
        assert result.output == f"Error: {unmakeable}: cannot make its folder (File exists)\n"
        assert not (tmp_path / "t.md").exists()


@pytest.mark.parametrize("change", ["steps", "settings"])
def test_a_run_keeps_a_record_only_while_finished_and_moved_runs_are_not_gathered(
        seeded: tuple[Path, Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, change: str) -> None:
    """Records are written as each run finishes or is reused (before the sweep is interrupted), removed when a
    run is rebuilt (here training on, or trained afresh after the old run moved to stale/, both interrupted)."""
    features, plan, out = seeded
    copy = tmp_path / "runs"
    shutil.copytree(out, copy, symlinks=True)
    for record in copy.glob(f"seed-*/pooled/{RECORD_NAME}"):
        record.unlink()  # written again when the run is reused
    for record in copy.glob(f"seed-[12]/vava/{RECORD_NAME}"):
        record.unlink()  # the sweep stops at seed 0's vava

    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(sweep_run, "train", interrupted)
    overrides = {**SEEDED_TINY, "model": {**SEEDED_TINY["model"], "conv_channels": 4}} if change == "settings" \
        else SEEDED_TINY
    with pytest.raises(KeyboardInterrupt):
        run_sweep(features, copy, load_plan(str(plan)), steps=STEPS * (2 if change == "steps" else 1),
                  overrides=overrides, seeds=SEEDS, log=lambda line: None)
    assert sorted(str(p.relative_to(copy)) for p in copy.rglob(RECORD_NAME)) == (
        ["seed-0/pooled/sweep_record.json"] if change == "steps"
        else ["seed-0/pooled/sweep_record.json", "seed-0/stale/vava.1/sweep_record.json"])
    shutil.copy(out / "seed-1" / "vava" / RECORD_NAME, copy / "seed-1" / "vava" / RECORD_NAME)
    gathered = gather_records([copy], load_plan(str(plan)))
    assert gathered.seeds == [0, 1] and gathered.missing == ["seed-1/pooled", "seed-0/vava"]  # in plan order
