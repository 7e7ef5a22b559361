"""Plan files and one sweep run, shared by the sweep package's tests."""
from __future__ import annotations

from pathlib import Path

from tests.stages.train.helpers import TINY_OVERRIDES
from vava.pipeline.sweep import load_plan, run_sweep


def plan_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "plan.yaml"
    path.write_text(text)
    return path


def sweep_once(features: Path, out: Path, plan: Path, steps: int = 2) -> tuple[list[str], dict[str, str]]:
    lines: list[str] = []
    _, failed = run_sweep(features, out, load_plan(str(plan)), steps=steps, overrides=TINY_OVERRIDES, log=lines.append)
    return lines, failed
