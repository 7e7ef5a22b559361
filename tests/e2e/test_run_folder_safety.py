"""Run folders and checkpoints: crafted checkpoints refused, writes never through symlinks, one
process per run, paths that work from anywhere, and disk-full / corrupt-checkpoint recovery."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from tests.conftest import write_toy_features
from vava.core.config import parse_overrides
from vava.core.errors import VavaError
from vava.pipeline.cli import main
from vava.stages.embed.run import embed
from vava.stages.evaluate.run import evaluate_run
from vava.stages.train.config import load_config
from vava.stages.train.loop import train

TINY = ["model.conv_channels=16", "model.fc_channels=16", "model.embedding_dim=8", "data.frames_per_video=8",
        "data.batch_pairs=2", "log_every=1", "checkpoint_every=2"]
TASKS = {"tasks": ("progress",), "ks": (1,)}
REPO = Path(__file__).resolve().parents[2]


def config(steps: int):
    return load_config(None, parse_overrides([*TINY, f"steps={steps}"]))


def cli(*args: str):
    return CliRunner().invoke(main, [str(a) for a in args])


def one_line_error(result, pattern: str) -> None:
    """The CLI failed with exit 1 and a single line matching `pattern`, no traceback."""
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert re.search(pattern, result.stderr), result.stderr


def only_checkpoint(run: Path, state: object) -> Path:
    """Save `state` as the run's only checkpoint: last.pt, with no step_N.pt to fall back to."""
    for old in (run / "checkpoints").iterdir():
        old.unlink()
    torch.save(state, run / "checkpoints" / "last.pt")
    return run / "checkpoints" / "last.pt"


def saved(run: Path) -> dict:
    return torch.load(run / "checkpoints" / "last.pt", weights_only=True)


@pytest.fixture(scope="module")
def trained_once(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(feature set, run trained 4 steps with checkpoints at 2 and 4): copy the run before changing it."""
    base = tmp_path_factory.mktemp("safety")
    features = write_toy_features(base / "cache" / "toyfeatures00000")
    train(features, base / "run", config(4), progress=False)
    return features, base / "run"


@pytest.fixture
def run(trained_once: tuple[Path, Path], tmp_path: Path) -> Path:
    copy = tmp_path / "run"
    shutil.copytree(trained_once[1], copy)
    return copy


@pytest.fixture
def features(trained_once: tuple[Path, Path]) -> Path:
    return trained_once[0]


# -- 1. checkpoints load without running code, and are checked -------------------------------


# -- 2. what train/embed/evaluate/align write, and where ---------------------------------------


# -- 7. one process per run folder -------------------------------------------------------------
def test_second_process_on_a_training_run_is_refused(features: Path, tmp_path: Path) -> None:
    out = tmp_path / "busy"
    command = [sys.executable, "-m", "vava.pipeline.cli", "train", "--features", str(features), "--out", str(out),
               "--steps", "1000000", "--quiet", *[a for kv in TINY for a in ("--set", kv)]]
    first = subprocess.Popen(command, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)},
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        while not (out / "checkpoints" / "last.pt").is_file():  # training, with the folder locked
            assert first.poll() is None and time.monotonic() < deadline, first.stderr.read().decode()
            time.sleep(0.2)
        busy = r"{option}: .*busy is in use by another vava process \(train, embed or evaluate\); wait for it"
        one_line_error(cli("train", "--features", features, "--out", out, "--steps", "2", "--resume", "--quiet"),
                       busy.format(option="--out"))
        one_line_error(cli("embed", "--run", out, "--quiet"), busy.format(option="--run"))
        with pytest.raises(VavaError, match="^" + busy.format(option="run")):
            evaluate_run(out, **TASKS)
        assert not (out / "embeddings.h5").exists()
    finally:
        first.kill()
        first.wait()
    embed(out, progress=False)  # the lock went with the process


# -- 10. run folders work from any working directory ---------------------------------------------


# -- 12. disk full, and a corrupt last.pt ------------------------------------------------------
