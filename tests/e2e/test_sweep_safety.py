"""Sweeps, configs and degenerate training/probe inputs: refused in one line, nothing lost."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

import vava.pipeline.sweep.freshness as sweep_freshness
import vava.pipeline.sweep.run as sweep_run
from vava.core.errors import VavaError
from vava.core.run_folder import load_checkpoint
from vava.pipeline.cli import main
from vava.pipeline.sweep import load_plan, run_sweep

TINY = {"model": {"conv_channels": 8, "fc_channels": 8, "embedding_dim": 8},
        "data": {"frames_per_video": 6, "batch_pairs": 1}}


def plan_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "plan.yaml"
    path.write_text(text)
    return path


def sweep_once(features: Path, out: Path, plan: Path, steps: int = 2) -> tuple[list[str], dict[str, str]]:
    lines: list[str] = []
    _, failed = run_sweep(features, out, load_plan(str(plan)), steps=steps, overrides=TINY, log=lines.append)
    return lines, failed


# --------------------------------------------------------------------------------------------
# Plans: run names are plain names, every part has the right shape


@pytest.mark.parametrize(
    ("runs", "message"),
    [("'../../x': {identity: true}", r"run name: '\.\./\.\./x' must be a plain name"),
     ("/abs/x: {identity: true}", r"run name: '/abs/x' must be a plain name"),
     ("'..': {identity: true}", r"run name: '\.\.' is not a usable name"),
     ("results.md: {identity: true}", r"run name: 'results\.md' is a reserved name"),
     ("stale: {identity: true}", r"run name: 'stale' is a reserved name"),
     ("1: {identity: true}", r"run name: expected a string, got int")],
)
def test_plan_run_names_must_be_plain(tmp_path: Path, runs: str, message: str) -> None:
    path = plan_file(tmp_path, f"runs:\n  {runs}\n")
    with pytest.raises(VavaError, match=rf"^{path}: {message}"):
        load_plan(str(path))


@pytest.mark.parametrize(
    ("text", "message"),
    [("- a\n- b", "expected a mapping of keys to values, got a list"),
     ("runs: [a, b]", "runs: expected a mapping, got a list"),
     ("runs: {a: vava}", "run 'a': expected a mapping, got a str"),
     ("runs: {a: {objective: vava, set: [loss.gamma, 1]}}", "run 'a': set: expected a mapping, got a list"),
     ("runs: {a: {objective: vava, set: {data: 3, data.batch_pairs: 2}}}",
      "run 'a': set: data.batch_pairs: data is already set to 3, not to keys"),
     ("runs: {a: {objective: vava, set: {1: 2}}}", "run 'a': set: 1: config keys must be strings"),
     ("runs: {a: {objective: [vava]}}", "run 'a': objective: expected an objective name, got \\['vava'\\]"),
     ("runs: {a: {identity: yes please}}",
      "run 'a': identity: expected true, false or one of features, features-standardised, time, got 'yes please'"),
     ("runs: {a: {identity: true}}\ntables: [a]", "tables: expected a mapping, got a list"),
     ("runs: {a: {identity: true}}\ntables: {t: a}", "table 't': expected a list of run names, got a str"),
     ("base: [synthetic]\nruns: {a: {identity: true}}", "base: expected a config preset name or file"),
     ("run: {a: {identity: true}}", "unknown key\\(s\\) run \\(known: base, runs, tables\\)")],
)
def test_plans_of_the_wrong_shape_are_named(tmp_path: Path, text: str, message: str) -> None:
    path = plan_file(tmp_path, text)
    with pytest.raises(VavaError, match=rf"^{path}: {message}"):
        load_plan(str(path))


# --------------------------------------------------------------------------------------------
# Configs: shapes, NaN and infinity, booleans, huge sizes


def test_cli_refuses_nan_learning_rate_in_one_line(toy_features: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["train", "--features", str(toy_features), "--out", str(tmp_path / "run"),
                                       "--set", "optim.lr=.nan"])
    assert result.exit_code == 1 and result.output.strip().splitlines() == [
        "Error: optim.lr: expected a finite number, got nan"]
    assert not (tmp_path / "run").exists()


# --------------------------------------------------------------------------------------------
# Pairs of distinct videos; probes on a single phase


# --------------------------------------------------------------------------------------------
# Sweeps: failures stay per run, stale runs are rebuilt, outputs written atomically

FAILING = """
runs:
  crash: {identity: true}
  nan-lr: {objective: vava, set: {optim.lr: .nan}}
  pooled: {identity: true}
"""


def test_a_failing_run_is_reported_and_the_others_go_on(toy_features: Path, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    real_embed = sweep_run.embed

    def embed(run_dir: Path, *args: object, **kwargs: object) -> Path:
        if Path(run_dir).name == "crash":
            raise RuntimeError("boom")
        return real_embed(run_dir, *args, **kwargs)

    monkeypatch.setattr(sweep_run, "embed", embed)
    markdown, failed = run_sweep(toy_features, tmp_path / "runs", load_plan(str(plan_file(tmp_path, FAILING))),
                                 steps=2, overrides=TINY, log=lambda line: None)
    assert failed == {"crash": "RuntimeError: boom", "nan-lr": "optim.lr: expected a finite number, got nan"}
    assert (tmp_path / "runs" / "pooled" / "report.json").is_file() and "| pooled |" in markdown
    assert "- crash: RuntimeError: boom" in markdown

    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(sweep_run, "embed", interrupted)
    with pytest.raises(KeyboardInterrupt):
        run_sweep(toy_features, tmp_path / "other", load_plan(str(plan_file(tmp_path, FAILING))), log=lambda line: None)


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


def test_sweep_cli_results_are_markdown_and_written_atomically(toy_features: Path, tmp_path: Path) -> None:
    plan = plan_file(tmp_path, "runs: {pooled: {identity: true}}")
    args = ["sweep", "--features", str(toy_features), "--plan", str(plan), "--out", str(tmp_path / "runs")]
    refused = CliRunner().invoke(main, [*args, "--results", str(tmp_path / "tables.txt")])
    assert refused.exit_code == 2 and "--results" in refused.output and "does not end in .md" in refused.output
    assert not (tmp_path / "runs").exists()

    outside = tmp_path / "outside.md"
    outside.write_text("keep me")
    (tmp_path / "runs").mkdir()
    (tmp_path / "runs" / "results.md").symlink_to(outside)
    done = CliRunner().invoke(main, [*args, "--results", str(tmp_path / "tables.md")])
    assert done.exit_code == 0, done.output
    assert outside.read_text() == "keep me" and not (tmp_path / "runs" / "results.md").is_symlink()
    written = (tmp_path / "runs" / "results.md").read_text()
    assert "| pooled |" in written and (tmp_path / "tables.md").read_text() == written

    nan = CliRunner().invoke(main, [*args[:-1], str(tmp_path / "nan"), "--set", "optim.lr=.nan"])
    assert nan.exit_code == 1 and nan.output.strip() == "Error: optim.lr: expected a finite number, got nan"
    assert not (tmp_path / "nan").exists()


@pytest.mark.parametrize(
    ("seeds", "message"),
    [("0,1,1", "1 given more than once"),
     ("2,0,2,0", "0, 2 given more than once"),
     ("a", "'a' is not an integer (give distinct integers >= 0, e.g. 0,1,2)"),
     ("0,,1", "'' is not an integer"),
     ("", "'' is not an integer"),
     ("1.5", "'1.5' is not an integer"),
     ("1_000", "'1_000' is not an integer"),
     ("0,-1", "-1 is negative (seeds are integers >= 0)"),
     ("18446744073709551616", "18446744073709551616 is too large (seeds are below 2**64)"),
     ("9" * 5000, "9" * 40 + " is too large (seeds are below 2**64)"),
     ("x" * 5000, "'" + "x" * 39 + " is not an integer")],
)
def test_sweep_cli_refuses_bad_seeds_in_one_line(toy_features: Path, tmp_path: Path, seeds: str, message: str) -> None:
    plan = plan_file(tmp_path, "runs: {pooled: {identity: true}}")
    result = CliRunner().invoke(main, ["sweep", "--features", str(toy_features), "--plan", str(plan),
                                       "--out", str(tmp_path / "runs"), "--seeds", seeds])
    assert result.exit_code == 2
    assert result.output.strip().splitlines()[-1].startswith(f"Error: Invalid value for --seeds: {message}")
    assert not (tmp_path / "runs").exists()


def test_sweep_cli_seeds_layout_and_a_run_folder_in_the_way(toy_features: Path, tmp_path: Path) -> None:
    plan = plan_file(tmp_path, "runs: {pooled: {identity: true}}")
    args = ["sweep", "--features", str(toy_features), "--plan", str(plan), "--out", str(tmp_path / "runs")]
    done = CliRunner().invoke(main, [*args, "--seeds", " 3, 1"])
    assert done.exit_code == 0, done.output
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == ["results.md", "seed-1", "seed-3"]
    assert (tmp_path / "runs" / "seed-3" / "pooled" / "report.json").is_file()
    assert "## all runs (mean ± sd over 2 seeds: 3, 1)" in (tmp_path / "runs" / "results.md").read_text()

    nan = plan_file(tmp_path, "runs: {nan-lr: {objective: vava, set: {optim.lr: .nan}}}")
    failed = CliRunner().invoke(main, [*args[:4], str(nan), "--out", str(tmp_path / "failing"), "--seeds", "5"])
    assert failed.exit_code == 1 and "- seed-5/nan-lr: optim.lr: expected a finite number, got nan" in failed.output
    assert "(no finished run)" in (tmp_path / "failing" / "seed-5" / "results.md").read_text()

    (tmp_path / "runs" / "seed-0").mkdir()
    (tmp_path / "runs" / "seed-0" / "sweep_key.json").write_text("{}")
    refused = CliRunner().invoke(main, [*args, "--seeds", "0"])
    assert refused.exit_code == 1 and refused.output.strip() == (
        f"Error: {tmp_path / 'runs' / 'seed-0'}: not a seed folder of vava sweep (a link, a file or a run); it was "
        f"left as it is: move it away or use another --out")
