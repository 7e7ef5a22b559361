"""Running a sweep (pipeline/sweep/run.py): one feature set for many runs, reuse, failures that stay per run,
one folder per seed."""
from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.conftest import write_toy_features
from tests.pipeline.sweep.helpers import plan_file
from tests.stages.train.helpers import TINY_OVERRIDES
from vava.pipeline.cli import main
from vava.pipeline.sweep import load_plan, run_sweep
from vava.pipeline.sweep import run as sweep_run

PLAN = """
runs:
  pooled: {identity: true}
  time: {identity: time}
  vava: {objective: vava, set: {loss.mode: reference}}
  broken: {objective: vava, set: {loss.gamma: -1}}
tables:
  "objectives": [time, pooled, vava]
"""


def test_sweep_trains_evaluates_reuses_and_reports_failures(toy_features: Path, tmp_path: Path) -> None:
    plan_file = tmp_path / "plan.yaml"
    plan_file.write_text(PLAN)
    plan = load_plan(str(plan_file))
    assert [r.name for r in plan.runs] == ["pooled", "time", "vava", "broken"]
    lines: list[str] = []
    markdown, failed = run_sweep(toy_features, tmp_path / "runs", plan, steps=2, overrides=TINY_OVERRIDES,
                                 log=lines.append)
    assert list(failed) == ["broken"] and "gamma must be a finite number >= 0" in failed["broken"]
    assert "## objectives" in markdown and "| pooled | with | frozen features (raw) |" in markdown
    assert "| time | with | time only |" in markdown and "| vava |" in markdown
    assert "### objectives: per action (as Table 5)" in markdown and "| a | vava |" in markdown
    assert (tmp_path / "runs" / "vava" / "report.json").is_file()
    assert (tmp_path / "runs" / "vava" / "virtual_mass.json").is_file()  # the vava objective's diagnostic
    assert not (tmp_path / "runs" / "pooled" / "virtual_mass.json").exists()
    assert "mode: reference" in (tmp_path / "runs" / "vava" / "config.yaml").read_text()

    lines.clear()
    run_sweep(toy_features, tmp_path / "runs", plan, steps=2, overrides=TINY_OVERRIDES, log=lines.append)
    assert "[1/4] pooled: report exists, reused" in lines and "[3/4] vava: report exists, reused" in lines

    other = write_toy_features(tmp_path / "cache" / "otherfeatures000", seed=1)
    _, failed = run_sweep(other, tmp_path / "runs", plan, steps=2, overrides=TINY_OVERRIDES, log=lines.append)
    assert "holds a run on feature set toyfeatures00000, not otherfeatures000" in failed["vava"]


# -- a failing run is reported and the others go on; seed folders ----------------------------------


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
                                 steps=2, overrides=TINY_OVERRIDES, log=lambda line: None)
    assert failed == {"crash": "RuntimeError: boom", "nan-lr": "optim.lr: expected a finite number, got nan"}
    assert (tmp_path / "runs" / "pooled" / "report.json").is_file() and "| pooled |" in markdown
    assert "- crash: RuntimeError: boom" in markdown

    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(sweep_run, "embed", interrupted)
    with pytest.raises(KeyboardInterrupt):
        run_sweep(toy_features, tmp_path / "other", load_plan(str(plan_file(tmp_path, FAILING))), log=lambda line: None)


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
