"""The README's "Scaling out" recipes for one machine, pasted as they are (2 gloo processes), the way a new user
runs them: synthetic videos in my_videos, WEIGHTS=random; only the sizes are shrunk."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import cli

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def one_machine_recipes() -> str:
    """The first code block of "Extraction on several processes" and of "Distributed training", in order."""
    text = (ROOT / "README.md").read_text()
    blocks = [re.search(r"```sh\n(.*?)```", text[text.index(heading):], flags=re.DOTALL).group(1)
              for heading in ("### Extraction on several processes", "### Distributed training")]
    return "\n".join(blocks)


@pytest.mark.skipif(shutil.which("bash") is None, reason="the recipes are for bash")
def test_the_one_machine_recipes_run_as_pasted(tmp_path: Path) -> None:
    assert cli("data", "synth", tmp_path / "my_videos", "--actions", "2", "--videos", "3", "--frames", "16:18",
               "--size", "64").exit_code == 0
    script = one_machine_recipes()
    assert script.count("--quiet | tail -n 1)") == 1 and script.count("--out runs/vava --config cpu\n") == 1
    script = script.replace("--quiet | tail -n 1)", "--image-size 64 --quiet | tail -n 1)").replace(
        "--out runs/vava --config cpu\n", "--out runs/vava --config cpu --steps 2 --quiet\n")  # small, two steps
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"  # `vava` and torchrun on the PATH
    done = subprocess.run(["bash", "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=600,
                          env={**os.environ, "PATH": path, "WEIGHTS": "random"}, check=False)
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
    features, run = done.stdout.splitlines()  # what `echo` printed, then train's last line
    assert re.fullmatch(r"cache/[0-9a-f]{16}", features) and run == "runs/vava", done.stdout
    assert (tmp_path / "runs" / "vava" / "checkpoints" / "last.pt").is_file()


def gather_recipe() -> str:
    """The code block of "Gathering runs built elsewhere"."""
    text = (ROOT / "README.md").read_text()
    heading = "### Gathering runs built elsewhere"
    return re.search(r"```sh\n(.*?)```", text[text.index(heading):], flags=re.DOTALL).group(1)


@pytest.mark.skipif(shutil.which("bash") is None, reason="the recipe is for bash")
def test_the_gather_recipe_runs_as_pasted_and_gives_one_table_over_both_seeds(tmp_path: Path) -> None:
    from tests.conftest import write_toy_features

    features = write_toy_features(tmp_path / "cache" / "toyfeatures00000")
    (tmp_path / "tiny.yaml").write_text("objective: vava\nsteps: 4\ncheckpoint_every: 2\nlog_every: 1\n"
                                        "data: {frames_per_video: 6, batch_pairs: 1}\n"
                                        "model: {conv_channels: 8, fc_channels: 8, embedding_dim: 8}\n")
    (tmp_path / "plan.yaml").write_text(f"base: {tmp_path / 'tiny.yaml'}\n"
                                        "runs:\n  time: {identity: time}\n  vava: {objective: vava}\n")
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"
    done = subprocess.run(["bash", "-ec", gather_recipe()], cwd=tmp_path, capture_output=True, text=True,
                          timeout=600, check=False,
                          env={**os.environ, "PATH": path, "FEATURES": str(features), "PLAN": "plan.yaml"})
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
    assert (tmp_path / "loss_curves.png").stat().st_size > 0
    gathered = (tmp_path / "results.md").read_text()
    assert "## all runs (mean ± sd over 2 seeds: 0, 1)" in gathered
    assert "## Runs without a record" not in gathered  # both seeds of both runs found
