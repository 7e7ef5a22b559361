"""The training loop: runs, logs, checkpoints, exact resume, failures and their messages, an --out that is not
a run."""
from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from tests.helpers import cli, one_line_error
from tests.stages.train.helpers import RUN_TINY, config
from vava.core.errors import VavaError
from vava.core.run_folder import load_checkpoint
from vava.stages.train import loop
from vava.stages.train.config import load_config
from vava.stages.train.loop import train
from vava.stages.train.objectives import OBJECTIVES, Objective


def losses(run: Path) -> list[tuple[int, float]]:
    with open(run / "train_log.csv", newline="") as handle:
        return [(int(row["step"]), float(row["loss"])) for row in csv.DictReader(handle)]


def test_run_folder_contents(toy_features: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    summary = train(toy_features, run, config("steps=4", "checkpoint_every=2"), progress=False)
    assert (summary.start_step, summary.steps, summary.data_path) == (0, 4, "host")
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["last.pt", "step_0000002.pt", "step_0000004.pt"]
    saved = yaml.safe_load((run / "config.yaml").read_text())
    assert saved["loss"]["gamma"] == 0.5 and saved["model"]["conv_channels"] == 16  # resolved, loadable
    assert load_config(str(run / "config.yaml"), {}).loss["mode"] == "paper"
    with open(run / "train_log.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [int(r["step"]) for r in rows] == [1, 2, 3, 4]
    assert {"loss", "align", "intra", "inter", "phi", "lr", "steps_per_s"} <= set(rows[0])
    state = load_checkpoint(run / "checkpoints" / "last.pt")
    assert state["step"] == 4 and state["fingerprint"] == "toyfeatures00000"


def test_resumed_run_matches_an_uninterrupted_one(toy_features: Path, tmp_path: Path) -> None:
    whole, split = tmp_path / "whole", tmp_path / "split"
    train(toy_features, whole, config("steps=6", "checkpoint_every=3"), progress=False)
    train(toy_features, split, config("steps=3", "checkpoint_every=3"), progress=False)
    summary = train(toy_features, split, config("steps=6", "checkpoint_every=3"), resume=True, progress=False)
    assert summary.start_step == 3
    assert losses(split) == losses(whole)


def test_log_rows_hold_the_mean_over_their_window(toy_features: Path, tmp_path: Path) -> None:
    """Every row logs the mean loss of the steps since the previous row (the same run, logged every step
    and every 3 steps), and the learning rate follows the schedule."""
    each, every_3 = tmp_path / "each", tmp_path / "every3"
    schedule = ("optim.warmup_steps=4", "optim.lr=1e-3")
    train(toy_features, each, config("steps=7", "log_every=1", *schedule), progress=False)
    train(toy_features, every_3, config("steps=7", "log_every=3", *schedule), progress=False)
    single = [loss for _, loss in losses(each)]
    assert [step for step, _ in losses(every_3)] == [3, 6, 7]
    assert [loss for _, loss in losses(every_3)] == pytest.approx([sum(single[:3]) / 3, sum(single[3:6]) / 3,
                                                                   single[6]], rel=1e-6)
    with open(each / "train_log.csv", newline="") as handle:
        assert [float(row["lr"]) for row in csv.DictReader(handle)] == pytest.approx(
            [2.5e-4, 5e-4, 7.5e-4, 1e-3, 1e-3, 1e-3, 1e-3])


def test_resume_drops_log_rows_past_the_checkpoint(toy_features: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    train(toy_features, run, config("steps=5", "checkpoint_every=3"), progress=False)
    (run / "checkpoints" / "last.pt").unlink()
    (run / "checkpoints" / "last.pt").hardlink_to(run / "checkpoints" / "step_0000003.pt")  # killed after logging step 5
    train(toy_features, run, config("steps=5", "checkpoint_every=3"), resume=True, progress=False)
    assert [step for step, _ in losses(run)] == [1, 2, 3, 4, 5]


def test_run_guards(toy_features: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    with pytest.raises(VavaError, match="^resume: no checkpoint"):
        train(toy_features, run, config("steps=2"), resume=True, progress=False)
    train(toy_features, run, config("steps=2"), progress=False)
    with pytest.raises(VavaError, match="^out: .* already holds a run; pass resume to continue it"):
        train(toy_features, run, config("steps=2"), progress=False)
    with pytest.raises(VavaError, match="already at step 2"):
        train(toy_features, run, config("steps=2"), resume=True, progress=False)
    with pytest.raises(VavaError, match=r"^resume: config differs from the saved run in optim"):
        train(toy_features, run, config("steps=4", "optim.lr=0.01"), resume=True, progress=False)
    cosine = tmp_path / "cosine"
    train(toy_features, cosine, config("steps=2", "optim.schedule=cosine"), progress=False)
    with pytest.raises(VavaError) as caught:  # step 1 of 4 has another rate than step 1 of 2 under a cosine
        train(toy_features, cosine, config("steps=4", "optim.schedule=cosine"), resume=True, progress=False)
    assert str(caught.value) == ("resume: config differs from the saved run in steps (only checkpoint_every, "
                                 "eval_every, log_every may change; optim.schedule is not constant: the learning "
                                 "rate of every step depends on steps); train a new run instead")
    with pytest.raises(VavaError, match=r"objective vava: unknown option\(s\) gama"):
        train(toy_features, tmp_path / "other", config("loss.gama=1"), progress=False)
    with pytest.raises(VavaError, match="^objective: unknown objective 'nope'"):
        train(toy_features, tmp_path / "other", config("objective=nope"), progress=False)


def test_non_finite_loss_stops_and_keeps_the_last_good_checkpoint(toy_features: Path, tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    run = tmp_path / "run"
    train(toy_features, run, config("steps=2", "checkpoint_every=1"), progress=False)
    good = (run / "checkpoints" / "last.pt").read_bytes()
    real = loop.build_objective

    def exploding(name, options):
        objective = real(name, options)
        forward = objective.forward
        objective.forward = lambda batch: (forward(batch)[0] * float("nan"), forward(batch)[1])
        return objective

    monkeypatch.setattr(loop, "build_objective", exploding)
    with pytest.raises(VavaError, match=r"step 2: loss is nan \(align=.*\); training stopped, last good checkpoint: .*last.pt"):
        train(toy_features, run, config("steps=4", "checkpoint_every=1"), resume=True, progress=False)
    assert (run / "checkpoints" / "last.pt").read_bytes() == good


def test_budget_schedule_gets_total_steps_from_steps_and_only_then() -> None:
    budget = loop.resolved(config("steps=40", "loss.phi_schedule=budget"))
    assert budget.loss["total_steps"] == 40
    assert loop.resolved(config("steps=40", "loss.phi_schedule=budget", "loss.total_steps=7")).loss["total_steps"] == 7
    official = [loop.resolved(config(f"steps={steps}")).loss for steps in (40, 80)]
    assert official[0]["total_steps"] is None and official[0] == official[1]  # steps stays a resumable change
    assert loop.resolved(config("steps=40", "objective=tcc")).loss.get("total_steps") is None


@dataclass(frozen=True)
class HorizonConfig:
    horizon: int | None = None
    embedding_dim: int = 1


class Horizon(Objective):
    """A toy objective whose `horizon` defaults to the run's steps."""

    name = "horizon"
    config_class = HorizonConfig

    @classmethod
    def derive(cls, config) -> dict:
        return {"horizon": config.steps, **config.loss}


def test_resolved_takes_what_the_objective_derives(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(OBJECTIVES, "horizon", Horizon)
    found = loop.resolved(config("steps=40", "objective=horizon", "model.embedding_dim=8"))
    assert found.loss == {"horizon": 40, "embedding_dim": 8}  # derived, and filled from the model by name
    assert loop.resolved(config("steps=40", "objective=horizon", "loss.horizon=3")).loss["horizon"] == 3


def test_balanced_run_logs_gradient_norms_and_the_budget_phi(toy_features: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    train(toy_features, run, config("steps=2", "loss.phi_schedule=budget", "loss.phi_end=0.1", "loss.cost=normalised",
                                    "loss.virtual=partial", "loss.log_grad_norms=true"), progress=False)
    with open(run / "train_log.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [float(row["phi"]) for row in rows] == pytest.approx([0.999, 0.999 - 0.899 / 2])  # steps 0 and 1 of 2
    for row in rows:
        norms = {key: float(row[key]) for key in ("grad_intra", "grad_align", "grad_inter", "grad_ratio")}
        assert all(value > 0 for value in norms.values())
        assert norms["grad_ratio"] == pytest.approx(norms["grad_align"] / norms["grad_intra"], rel=1e-5)
    assert yaml.safe_load((run / "config.yaml").read_text())["loss"]["total_steps"] == 2


# -- an --out that is not empty and not a run ------------------------------------------------------


def test_train_refuses_a_non_empty_out_that_is_not_a_run(features: Path, tmp_path: Path) -> None:
    out = tmp_path / "documents"
    out.mkdir()
    (out / "config.yaml").write_text("mine")
    one_line_error(cli("train", "--features", features, "--out", out, "--steps", "2", "--quiet"),
                   r"--out: .*documents is not empty and is not a run folder \(no run.json\); .* --force")
    assert sorted(p.name for p in out.iterdir()) == ["config.yaml"] and (out / "config.yaml").read_text() == "mine"

    forced = cli("train", "--features", features, "--out", out, "--steps", "2", "--quiet", "--force",
                 *[a for kv in RUN_TINY for a in ("--set", kv)])
    assert forced.exit_code == 0, forced.output
    assert (out / "checkpoints" / "last.pt").is_file() and (out / "config.yaml").read_text() != "mine"
