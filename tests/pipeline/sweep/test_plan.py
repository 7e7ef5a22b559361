"""Sweep plans (pipeline/sweep/plan.py): bad plans named, identity kinds, the shipped plans; run names are plain
names and every part has the right shape; --seeds refused in one line."""
from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.pipeline.sweep.helpers import plan_file
from vava.core.errors import VavaError
from vava.pipeline.cli import main
from vava.pipeline.sweep import load_plan


@pytest.mark.parametrize(
    ("text", "message"),
    [("runs: {a: {objective: vava, identity: true}}", "run 'a': give exactly one of objective, identity"),
     ("runs: {a: {objective: vava, steps: 3}}", "run 'a': unknown key(s) steps"),
     ("runs: {a: {identity: true}}\ntables: {t: [a, b]}", "table 't' names unknown run(s) b"),
     ("runs: {}", "no runs"),
     ("runs: {a: {identity: frames}}", "run 'a': identity: expected true, false or one of features, "
                                       "features-standardised, time, got 'frames'"),
     ("runs: {a: {identity: [time]}}", "run 'a': identity: expected true, false or one of"),
     ("runs: {a: {identity: time, objective: vava}}", "run 'a': give exactly one of objective, identity"),
     ("runs: {a: {identity: false}}", "run 'a': give exactly one of objective, identity")],
)
def test_bad_plans(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "plan.yaml"
    path.write_text(text)
    with pytest.raises(VavaError) as error:
        load_plan(str(path))
    assert message in str(error.value)


def test_identity_kinds_in_plans(tmp_path: Path) -> None:
    path = tmp_path / "plan.yaml"
    path.write_text("runs: {raw: {identity: true}, t: {identity: time}, z: {identity: features-standardised}, "
                    "v: {objective: vava, identity: false}}")
    assert [(run.name, run.identity, run.objective) for run in load_plan(str(path)).runs] == [
        ("raw", "features", None), ("t", "time", None), ("z", "features-standardised", None), ("v", None, "vava")]


def test_shipped_plans_load() -> None:
    assert len(load_plan("ablations").runs) == 23 and len(load_plan("objectives").runs) == 12
    references = ["time-only", "backbone-features", "backbone-features-standardised"]
    for name in ("ablations", "objectives"):
        plan = load_plan(name)
        assert [(r.name, r.identity) for r in plan.runs if r.identity] == list(
            zip(references, ["time", "features", "features-standardised"]))
        assert all(members[:3] == references for members in plan.tables.values())  # every table shows them first
    with pytest.raises(VavaError, match=r"^plan: nope is neither a file nor a preset in configs/sweeps \(presets: "
                                         r"ablations, benchmark, benchmark-ablations, objectives, recipe\)$"):
        load_plan("nope")


def test_plan_differences_are_pairs_of_its_runs(tmp_path: Path) -> None:
    path = plan_file(tmp_path, "runs: {a: {identity: true}, b: {identity: time}}\ndifferences: {d: [[a, b], [b, a]]}")
    assert load_plan(str(path)).differences == {"d": [("a", "b"), ("b", "a")]}
    assert load_plan("benchmark").differences == {"Paired by seed: the alignment term, and the official weighting": [
        ("vava-balanced", "vava-balanced-intra-only"), ("vava", "vava-balanced-intra-only"), ("vava-reference", "vava")]}
    ablations = load_plan("benchmark-ablations")
    assert {b for pairs in ablations.differences.values() for _, b in pairs} == {"vava", "vava-balanced"}
    assert sorted(a for pairs in ablations.differences.values() for a, _ in pairs) == sorted(
        run.name for run in ablations.runs if run.name not in ("vava", "vava-balanced"))  # every other run, once


def test_benchmark_plans_share_the_balanced_runs() -> None:
    comparison, ablations = load_plan("benchmark"), load_plan("benchmark-ablations")
    shared = {run.name: run for run in comparison.runs if run.name in {r.name for r in ablations.runs}}
    assert sorted(shared) == ["vava", "vava-balanced", "vava-balanced-intra-only"]
    assert all(shared[run.name] == run for run in ablations.runs if run.name in shared)  # same settings: reused
    balanced = shared["vava-balanced"].overrides
    assert balanced["loss.virtual"] == "partial" and balanced["loss.align_weight"] == 0.2
    intra = shared["vava-balanced-intra-only"].overrides
    assert intra == {**balanced, "loss.align_weight": 0.0, "loss.inter_weight": 0.0}


# -- run names are plain names, every part of a plan has the right shape ---------------------------


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
     ("run: {a: {identity: true}}", "unknown key\\(s\\) run \\(known: base, runs, tables, differences\\)"),
     ("runs: {a: {identity: true}}\ndifferences: {d: []}", "differences 'd': expected a list of \\[A, B\\] run-name pairs"),
     ("runs: {a: {identity: true}}\ndifferences: [a]", "differences: expected a mapping, got a list"),
     ("runs: {a: {identity: true}, b: {identity: time}}\ndifferences: {d: [[a, b, a]]}",
      "differences 'd': expected \\[A, B\\], two distinct run names, got \\['a', 'b', 'a'\\]"),
     ("runs: {a: {identity: true}}\ndifferences: {d: [[a, a]]}", "differences 'd': expected \\[A, B\\], two distinct"),
     ("runs: {a: {identity: true}}\ndifferences: {d: [[a, c]]}", "differences 'd' names unknown run\\(s\\) c")],
)
def test_plans_of_the_wrong_shape_are_named(tmp_path: Path, text: str, message: str) -> None:
    path = plan_file(tmp_path, text)
    with pytest.raises(VavaError, match=rf"^{path}: {message}"):
        load_plan(str(path))


# -- --seeds ---------------------------------------------------------------------------------------


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
