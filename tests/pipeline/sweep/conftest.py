"""The seeded sweep that the sweep package's tests read (made once per test session)."""
from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import write_toy_features
from tests.pipeline.sweep.helpers import SEEDED, SEEDED_TINY, SEEDS, STEPS
from vava.pipeline.sweep import load_plan, run_sweep


@pytest.fixture(scope="package")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """(feature set, plan file, OUT) of a sweep over SEEDS, made once; tests work on copies of OUT."""
    root = tmp_path_factory.mktemp("seeded")
    features = write_toy_features(root / "cache" / "toyfeatures00000")
    plan = root / "plan.yaml"
    plan.write_text(SEEDED)
    _, failed = run_sweep(features, root / "runs", load_plan(str(plan)), steps=STEPS, overrides=SEEDED_TINY,
                          seeds=SEEDS, log=lambda line: None)
    assert not failed
    return features, plan, root / "runs"
