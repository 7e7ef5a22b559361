"""`vava sweep`: plans, one feature set for many runs, reuse, failures."""
from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import write_toy_features
from vava.core.errors import VavaError
from vava.pipeline.sweep import load_plan, run_sweep

PLAN = """
runs:
  pooled: {identity: true}
  time: {identity: time}
  vava: {objective: vava, set: {loss.mode: reference}}
  broken: {objective: vava, set: {loss.gamma: -1}}
tables:
  "objectives": [time, pooled, vava]
"""
TINY = {"model": {"conv_channels": 8, "fc_channels": 8, "embedding_dim": 8},
        "data": {"frames_per_video": 6, "batch_pairs": 1}}


def test_sweep_trains_evaluates_reuses_and_reports_failures(toy_features: Path, tmp_path: Path) -> None:
    plan_file = tmp_path / "plan.yaml"
    plan_file.write_text(PLAN)
    plan = load_plan(str(plan_file))
    assert [r.name for r in plan.runs] == ["pooled", "time", "vava", "broken"]
    lines: list[str] = []
    markdown, failed = run_sweep(toy_features, tmp_path / "runs", plan, steps=2, overrides=TINY, log=lines.append)
    assert list(failed) == ["broken"] and "gamma must be a finite number >= 0" in failed["broken"]
    assert "## objectives" in markdown and "| pooled | with | frozen features (raw) |" in markdown
    assert "| time | with | time only |" in markdown and "| vava |" in markdown
    assert "### objectives: per action (as Table 5)" in markdown and "| a | vava |" in markdown
    assert (tmp_path / "runs" / "vava" / "report.json").is_file()
    assert "mode: reference" in (tmp_path / "runs" / "vava" / "config.yaml").read_text()

    lines.clear()
    run_sweep(toy_features, tmp_path / "runs", plan, steps=2, overrides=TINY, log=lines.append)
    assert "[1/4] pooled: report exists, reused" in lines and "[3/4] vava: report exists, reused" in lines

    other = write_toy_features(tmp_path / "cache" / "otherfeatures000", seed=1)
    _, failed = run_sweep(other, tmp_path / "runs", plan, steps=2, overrides=TINY, log=lines.append)
    assert "holds a run on feature set toyfeatures00000, not otherfeatures000" in failed["vava"]


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
    with pytest.raises(VavaError, match="neither a file nor a preset"):
        load_plan("nope")
