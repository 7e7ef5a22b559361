"""The sanity ladder (`vava diagnose`): its verdict rules by hand, and a tiny ladder that passes end to end."""
from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.conftest import write_toy_features
from vava.core.errors import VavaError
from vava.pipeline.cli import main
from vava.pipeline.ladder import FROZEN, SUPERVISED, TIME, Rung, judge, ladder_plan, render

# A tiny embedder that fits the toy's six phase classes in about a hundred steps; label smoothing keeps
# the converged loss away from 0, where the plateau test's relative change would stay large.
TINY = ["model.conv_channels=16", "model.fc_channels=16", "model.embedding_dim=8", "data.frames_per_video=8",
        "data.batch_pairs=2", "model.context_frames=0", "model.standardize=true", "model.dropout=0", "log_every=2",
        "optim.lr=3e-3", "loss.label_smoothing=0.2"]


def rungs(train: float | None, plateau: float | None, val: float | None, frozen: float = 0.6) -> dict[str, Rung]:
    return {TIME: Rung(TIME, 0.4), FROZEN: Rung(FROZEN, frozen), SUPERVISED: Rung(SUPERVISED, val, train, plateau)}


def test_supervised_passes_when_it_fits_converges_and_reaches_the_frozen_features() -> None:
    assert judge(rungs(train=0.95, plateau=0.01, val=0.6)).passed
    assert judge(rungs(train=0.9, plateau=-0.019, val=0.7)).passed


def test_each_failure_is_named_with_what_it_points_to() -> None:
    underfit = judge(rungs(train=0.5, plateau=0.01, val=0.7)).problems
    assert len(underfit) == 1 and underfit[0].startswith("supervised does not fit its training labels (accuracy 50.0 %")
    moving = judge(rungs(train=0.95, plateau=0.05, val=0.7)).problems
    assert len(moving) == 1 and "has not reached a plateau (c = +0.050" in moving[0]
    below = judge(rungs(train=0.95, plateau=0.0, val=0.55)).problems
    assert len(below) == 1 and "val classification (55.0 %) is below the frozen features' (60.0 %)" in below[0]
    assert len(judge(rungs(train=None, plateau=None, val=None)).problems) == 3


def test_render_shows_the_rungs_and_the_verdict() -> None:
    text = render(judge(rungs(train=0.5, plateau=0.01, val=0.7)), "synthetic")
    assert "| supervised | 70.0 % | +10.0 | 50.0 % | +0.010 |" in text and "**Failed**" in text


def test_ladder_plan_refuses_unknown_objectives() -> None:
    assert [run.name for run in ladder_plan("synthetic", ["vava", "tcc"]).runs] == [TIME, FROZEN, SUPERVISED,
                                                                                   "vava", "tcc"]
    with pytest.raises(VavaError, match=r"^--objectives: 'supervised' is not one of vava, tcc, lav, gta, tcn, sal$"):
        ladder_plan(None, ["supervised"])  # supervised is a rung of its own


def test_vava_diagnose_passes_on_a_learnable_toy_and_fails_when_undertrained(tmp_path: Path) -> None:
    features = write_toy_features(tmp_path / "cache" / "toyfeatures00000", distinct_actions=True)
    sets = [arg for item in TINY for arg in ("--set", item)]
    passed = CliRunner().invoke(main, ["diagnose", "--features", str(features), "--out", str(tmp_path / "ok"),
                                       "--config", "synthetic", "--objectives", "", "--steps", "120", *sets])
    assert passed.exit_code == 0, passed.output
    assert "**Passed**" in (tmp_path / "ok" / "ladder.md").read_text()
    short = CliRunner().invoke(main, ["diagnose", "--features", str(features), "--out", str(tmp_path / "short"),
                                      "--config", "synthetic", "--objectives", "", "--steps", "20", *sets])
    assert short.exit_code == 1 and "**Failed**" in short.output
