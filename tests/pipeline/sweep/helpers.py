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


# A sweep over three seeds (the `seeded` fixture): a reference row and a tiny VAVA run.
SEEDED = "runs:\n  pooled: {identity: true}\n  vava: {objective: vava}\n"
SEEDS = (0, 1, 2)
STEPS = 20  # the smallest budget with 2 logged steps in each of (0.8 S, 0.9 S] and (0.9 S, S]
SEEDED_TINY = {**TINY_OVERRIDES, "checkpoint_every": 10}  # a checkpoint at S/2: the val plateau test's midpoint


def seeded_again(seeded: tuple[Path, Path, Path], out: Path) -> tuple[str, dict[str, str], list[str]]:
    """The seeded sweep run again into `out` (a copy of its OUT): (markdown, failures, log lines)."""
    features, plan, _ = seeded
    lines: list[str] = []
    markdown, failed = run_sweep(features, out, load_plan(str(plan)), steps=STEPS, overrides=SEEDED_TINY,
                                 seeds=SEEDS, log=lines.append)
    return markdown, failed, lines
