"""Every extension kind is one module plus one registry line (README, Extending): a toy adapter, backbone,
objective and probe (`tests/e2e/toys/`), each registered with one line, run end to end through the CLI:
`data fixture` and `data info` (adapter and its options), `extract` (backbone, random weights), `train`
(objective and its options), `embed`, `evaluate` (probe and its option, in report.json)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from click.testing import CliRunner

from tests.e2e.toys import adapter, backbone, objective, probe
from vava.core.backbone import BACKBONES
from vava.core.embeddings_file import load_embeddings
from vava.pipeline.cli import main
from vava.pipeline.datasets import DATASETS
from vava.stages.evaluate.probes import PROBES
from vava.stages.train.objectives import OBJECTIVES


@pytest.fixture
def registered(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(DATASETS, "toy", adapter.DATASET)
    monkeypatch.setitem(BACKBONES, "toy", backbone.SPEC)
    monkeypatch.setitem(OBJECTIVES, "toy", objective.ToyLoss)
    monkeypatch.setitem(PROBES, "toy", probe.MeanNorm)


def vava(*args: str) -> list[str]:
    """The stdout lines of `vava ARGS`, which must succeed."""
    result = CliRunner().invoke(main, list(args))
    assert result.exit_code == 0, result.output
    return result.stdout.splitlines()


def test_a_toy_of_each_extension_kind_runs_end_to_end(registered: None, tmp_path: Path) -> None:
    data = Path(vava("data", "fixture", "--dataset", "toy", str(tmp_path / "data"))[-1])
    assert "toy" in vava("data", "fixture", "--list")
    info = vava("data", "info", "--dataset", "toy", "--root", str(data), "--dataset-option", "phases=3")
    assert info[1].split() == ["toy", "3", "2", "0", "40", "3:", "0,", "1,", "2"]  # 3 phases: the option counts
    assert "phases: phases per video, of equal length (default 2)" in " ".join(
        " ".join(vava("data", "info", "--help")).split())

    features = vava("extract", "--dataset", "toy", "--root", str(data), "--dataset-option", "phases=3",
                    "--cache", str(tmp_path / "cache"), "--backbone", "toy", "--weights", "random",
                    "--image-size", "32", "--batch-size", "4", "--workers", "1", "--quiet")[-1]
    run = Path(vava("train", "--features", features, "--objective", "toy", "--out", str(tmp_path / "run"),
                    "--steps", "3", "--set", "loss.weight=0.5", "--set", "data.frames_per_video=4",
                    "--set", "data.batch_pairs=2", "--set", "model.conv_channels=8", "--set", "model.fc_channels=8",
                    "--set", "model.context_frames=0", "--quiet")[-1])
    config = yaml.safe_load((run / "config.yaml").read_text())
    assert config["objective"] == "toy" and config["loss"] == {"weight": 0.5}
    embeddings = Path(vava("embed", "--run", str(run), "--quiet")[-1])
    vava("evaluate", "--run", str(run), "--tasks", "classification,toy", "--norm-order", "1", "--no-plots",
         "--no-time-reference")

    report = json.loads((run / "report.json").read_text())
    val = load_embeddings(embeddings).split("val")
    expected = np.concatenate([np.abs(v.embeddings).sum(axis=1) for v in val]).mean()
    assert report["results"]["toy"] == pytest.approx(expected, rel=1e-6)
    assert report["options"]["norm_order"] == 1 and "classification" in report["results"]
    assert {v.labels.max() for v in val} == {2}  # the adapter's option reached the labels
    assert "Mean norm" in (run / "report.md").read_text()


def test_a_probe_registered_after_the_cli_made_its_options_is_offered(monkeypatch: pytest.MonkeyPatch) -> None:
    assert "--norm-order" not in " ".join(vava("evaluate", "--help"))  # the options are made from the registry
    monkeypatch.setitem(PROBES, "toy", probe.MeanNorm)
    assert "--norm-order" in " ".join(vava("evaluate", "--help"))
