"""Whether a sweep reuses a run (pipeline/sweep/freshness.py): the sweep key, changed settings rebuild the run and
keep the old one, more steps train on, a damaged report or time rebuilds it, folders it did not make are left alone."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

import vava.pipeline.sweep.freshness as sweep_freshness
from tests.helpers import cli, fifo_at, without_blocking
from tests.pipeline.sweep.helpers import plan_file, sweep_once
from vava.core.errors import VavaError
from vava.core.run_folder import load_checkpoint
from vava.pipeline import sweep


def test_sweep_key_tells_reference_rows_apart() -> None:
    keys = [sweep.sweep_key(None, "abc", kind) for kind in ("features", "features-standardised", "time")]
    assert len({json.dumps(key, sort_keys=True) for key in keys}) == 3
    assert keys[2]["identity"] == "time" and keys[2]["config"] is None


# -- stale runs are rebuilt and the old kept; more steps train on ----------------------------------


def test_changed_settings_rebuild_the_run_and_keep_the_old_one(toy_features: Path, tmp_path: Path) -> None:
    out = tmp_path / "runs"
    sweep_once(toy_features, out, plan_file(tmp_path, "runs: {vava: {objective: vava}}"))
    old_report = (out / "vava" / "report.json").read_text()

    gamma = plan_file(tmp_path, "runs: {vava: {objective: vava, set: {loss.gamma: 0.1}}}")
    lines, failed = sweep_once(toy_features, out, gamma)
    assert not failed and "[1/1] vava: report exists, reused" not in lines
    assert f"    settings changed since this run was made: the old run was moved to {out / 'stale' / 'vava.1'}" in lines
    assert (out / "stale" / "vava.1" / "report.json").read_text() == old_report
    assert load_checkpoint(out / "vava" / "checkpoints")["config"]["loss"]["gamma"] == 0.1
    assert json.loads((out / "vava" / "sweep_key.json").read_text())["config"]["loss"]["gamma"] == 0.1

    lines, _ = sweep_once(toy_features, out, gamma)
    assert lines == ["[1/1] vava: report exists, reused"]


def test_more_steps_train_on_and_fewer_steps_start_afresh(toy_features: Path, tmp_path: Path) -> None:
    out, plan = tmp_path / "runs", plan_file(tmp_path, "runs: {vava: {objective: vava}}")
    sweep_once(toy_features, out, plan, steps=2)
    lines, failed = sweep_once(toy_features, out, plan, steps=3)
    assert not failed and "    steps changed: training on from the last checkpoint" in lines
    assert load_checkpoint(out / "vava" / "checkpoints")["step"] == 3 and not (out / "stale").exists()
    assert json.loads((out / "vava" / "report.json").read_text())["attrs"]["step"] == 3

    lines, failed = sweep_once(toy_features, out, plan, steps=2)
    assert not failed and f"    settings changed since this run was made: the old run was moved to " \
                          f"{out / 'stale' / 'vava.1'}" in lines
    assert load_checkpoint(out / "stale" / "vava.1" / "checkpoints")["step"] == 3
    assert load_checkpoint(out / "vava" / "checkpoints")["step"] == 2


def test_more_steps_under_a_cosine_schedule_train_a_new_run(toy_features: Path, tmp_path: Path) -> None:
    out = tmp_path / "runs"
    plan = plan_file(tmp_path, "runs: {tcn: {objective: tcn, set: {optim.schedule: cosine}}}")
    sweep_once(toy_features, out, plan, steps=2)
    lines, failed = sweep_once(toy_features, out, plan, steps=3)
    assert not failed and f"    settings changed since this run was made: the old run was moved to " \
                          f"{out / 'stale' / 'tcn.1'}" in lines
    assert load_checkpoint(out / "stale" / "tcn.1" / "checkpoints")["step"] == 2
    assert load_checkpoint(out / "tcn" / "checkpoints")["step"] == 3  # trained from step 0 in a fresh folder


def test_a_new_version_rebuilds_identity_runs(toy_features: Path, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    out, plan = tmp_path / "runs", plan_file(tmp_path, "runs: {pooled: {identity: true}}")
    sweep_once(toy_features, out, plan)
    monkeypatch.setattr(sweep_freshness, "_version", lambda: "99.0")
    _, failed = sweep_once(toy_features, out, plan)
    assert not failed and (out / "stale" / "pooled.1" / "report.json").is_file()
    assert json.loads((out / "pooled" / "sweep_key.json").read_text())["version"] == "99.0"


def test_a_folder_the_sweep_did_not_make_is_left_alone(toy_features: Path, tmp_path: Path) -> None:
    out = tmp_path / "runs"
    (out / "vava").mkdir(parents=True)
    (out / "vava" / "notes.txt").write_text("mine")
    plan = plan_file(tmp_path, "runs: {vava: {objective: vava}, pooled: {identity: true}}")
    _, failed = sweep_once(toy_features, out, plan)
    assert failed == {"vava": f"{out / 'vava'}: exists but was not made by vava sweep (no sweep_key.json); it was "
                              f"left as it is: move it away or use another --out"}
    assert sorted(p.name for p in (out / "vava").iterdir()) == ["notes.txt"] and not (out / "stale").exists()
    assert (out / "pooled" / "report.json").is_file()


# -- a finished run whose report or time is damaged or a FIFO is rebuilt ---------------------------


def test_sweep_rebuilds_a_finished_run_whose_report_or_time_is_damaged(toy_features: Path, tmp_path: Path) -> None:
    plan = tmp_path / "plan.yaml"
    plan.write_text("runs:\n  a: {identity: true}\n  b: {identity: true}\n")
    out = tmp_path / "sweep"
    args = ("sweep", "--features", toy_features, "--plan", plan, "--out", out, "--device", "cpu")
    assert cli(*args).exit_code == 0
    (out / "a" / "report.json").write_text("[]")
    (out / "b" / "sweep_time.json").write_text("{}")
    result = cli(*args)
    assert result.exit_code == 0, result.output
    assert "reused" not in result.stderr
    assert re.search(r"\| a \| \d+ \|\n\| b \| \d+ \|", (out / "results.md").read_text())
    assert (out / "a" / "report.json").read_text().startswith("{")


@pytest.mark.parametrize("name", ["report.json", "sweep_time.json"])
def test_a_run_file_that_is_a_fifo_is_refused_or_rebuilt(tmp_path: Path, name: str) -> None:
    from vava.pipeline.sweep import recorded_seconds
    from vava.stages.evaluate.report import load_comparable_report

    fifo = fifo_at(tmp_path / name)
    if name == "report.json":
        with pytest.raises(VavaError, match=re.escape(f"{fifo}: not a regular file (a FIFO)")):
            without_blocking(lambda: load_comparable_report(tmp_path), fifo)
    else:  # an unreadable time means "not finished": the sweep runs it again
        assert without_blocking(lambda: recorded_seconds(tmp_path), fifo) is None
