"""docs/byo.md's recipe, pasted into bash as a new user would: without the ImageNet weights it stops at the
first step that needs them with one message saying what to do; with WEIGHTS=random it runs to a report."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import moving_square
from vava.core.videoio import write_video

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.slow, pytest.mark.skipif(shutil.which("bash") is None, reason="the recipe is for bash")]


def recipe() -> str:
    text = (ROOT / "docs" / "byo.md").read_text()
    section = text[text.index("## From a folder of mp4s to a report"):]
    return re.search(r"```sh\n(.*?)```", section, flags=re.DOTALL).group(1)


def my_videos(folder: Path) -> None:
    """my_videos/<action>/*.mp4 (8 an action, 64 px, 15 fps, 0.6 s) and a segments.csv labelling two phases of
    each: 2 val videos per action at the recipe's --val-fraction 0.2."""
    rows = ["video,start,end,phase"]
    for action in ("pour", "stir"):
        (folder / "my_videos" / action).mkdir(parents=True)
        for i in range(8):
            write_video(folder / "my_videos" / action / f"{action}{i}.mp4", moving_square(9, seed=i), 15.0)
            rows += [f"{action}{i},0.0,0.25,reach", f"{action}{i},0.3,0.6,{action}"]
    (folder / "my_videos" / "segments.csv").write_text("\n".join(rows) + "\n")


def paste(script: str, folder: Path, **env: str) -> subprocess.CompletedProcess:
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"  # `vava` on the PATH, as after activate
    return subprocess.run(["bash", "-c", script], cwd=folder, capture_output=True, text=True, timeout=600,
                          env={**os.environ, "PATH": path, "TORCH_HOME": str(folder / "empty-hub"), **env})


def test_without_imagenet_weights_the_recipe_stops_at_the_first_step_that_needs_them(tmp_path: Path) -> None:
    my_videos(tmp_path)
    done = paste(recipe(), tmp_path)
    assert done.returncode == 1
    errors = [line for line in done.stderr.splitlines() if line.startswith("Error")]
    assert len(errors) == 1 and errors[0].startswith("Error: --weights imagenet: ")
    assert "resnet50-0676ba61.pth not found" in errors[0] and "--weights random" in errors[0]
    assert "Traceback" not in done.stderr
    assert (tmp_path / "my_videos" / "manifest.jsonl").is_file()  # the steps before it ran
    assert not (tmp_path / "cache").exists() and not (tmp_path / "runs").exists()  # and none after


def test_with_random_weights_the_recipe_runs_to_a_report(tmp_path: Path) -> None:
    my_videos(tmp_path)
    script = recipe()
    assert script.count("--config cpu") == 1
    done = paste(script.replace("--config cpu", "--config cpu --steps 2"), tmp_path, WEIGHTS="random")  # a short run
    assert done.returncode == 0, done.stderr
    report = tmp_path / "runs" / "mine" / "report.md"
    assert report.is_file() and "| time only (reference) |" in report.read_text()
    assert (tmp_path / "runs" / "mine" / "plots" / "alignment.png").is_file() and "warning" not in done.stderr
