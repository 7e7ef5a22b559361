"""The evaluation probe registry: every registered probe meets one contract, and a new probe is one class
plus one registry entry (it then shows in `vava evaluate`'s options, report.json and report.md)."""
from __future__ import annotations

import json
import math
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner

from tests.stages.evaluate.helpers import separable, write_h5
from vava.pipeline import cli
from vava.stages.evaluate.options import EvalOptions, declared_options
from vava.stages.evaluate.probes import PROBES
from vava.stages.evaluate.probes.base import (
    AT_LEAST_ONE,
    Action,
    Column,
    Metric,
    Option,
    Probe,
    Summary,
    Values,
    at,
    fixed,
    mean,
)
from vava.stages.evaluate.report import evaluate_embeddings
from vava.stages.evaluate.tables import main_table

SMALL = {"ks": (1, 2), "few_shot_ks": (1, 2), "few_shot_episodes": 3, "robustness_seeds": 2, "fractions": (0.5, 1.0)}


def numbers(value: object) -> list[float]:
    """Every number inside a result (nested dicts and lists)."""
    if isinstance(value, dict):
        return [n for v in value.values() for n in numbers(v)]
    if isinstance(value, list):
        return [n for v in value for n in numbers(v)]
    return [float(value)] if isinstance(value, (int, float)) else []


@pytest.fixture(scope="module")
def embeddings(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Two tiny embeddings files: 2 actions with 3 train and 2 val videos each, and one with a single val video."""
    folder = tmp_path_factory.mktemp("probes")
    rich = [separable(f"{a}{split[0]}{i}", split, action=a, flip=i == 1)
            for a in ("a", "b") for split, count in (("train", 3), ("val", 2)) for i in range(count)]
    lone = [separable("t1", "train"), separable("t2", "train", flip=True), separable("v1", "val")]
    return {"rich": write_h5(folder / "rich.h5", rich), "lone": write_h5(folder / "lone.h5", lone)}


@pytest.mark.parametrize("name", list(PROBES))
def test_every_probe_declares_options_columns_and_needs(name: str) -> None:
    probe = PROBES[name]
    assert issubclass(probe, Probe) and probe.name == name
    defaults = EvalOptions().as_dict()
    for option in probe.options:
        assert isinstance(option, Option) and option.name in defaults and option.default is not None
        option.validate(option.parse(option.default))
    assert all(isinstance(flag, bool) for flag in (probe.default, probe.needs_train, probe.needs_labels))
    assert probe.min_val_videos >= 1
    columns = [*probe.columns(defaults), *probe.setting_columns()]
    assert all(isinstance(c, Column) and c.title for c in columns)
    assert all(c.cell({}) == "-" for c in probe.columns(defaults))  # a number not computed renders as "-"
    settings = probe.provenance(defaults)  # one item of report.md's "; "-separated settings line
    assert settings is None or settings and not {";", "\n"} & set(settings)
    summary = probe.summary()
    assert summary is None or isinstance(summary, Summary) and summary.title and summary.metrics and all(
        isinstance(metric, Metric) and metric.title and metric.path for metric in summary.metrics)


@pytest.mark.parametrize("data", ["rich", "lone"])
@pytest.mark.parametrize("name", list(PROBES))
def test_every_probe_runs_to_finite_numbers_or_a_skip_reason(embeddings: dict[str, Path], name: str,
                                                             data: str) -> None:
    report = evaluate_embeddings(embeddings[data], tasks=(name,), **SMALL)
    assert set(report["results"]) == {"actions", name}
    skipped = [s for s in report["skipped"] if s["task"] == name]
    assert all(s["reason"] for s in skipped) and len(skipped) == len(report["skipped"])
    if data == "rich":
        assert not skipped
    found = numbers(report["results"][name])
    assert found or skipped
    assert all(math.isfinite(n) for n in found)
    header, rows = main_table([report])
    assert {c.title for c in PROBES[name].columns(report["options"])} <= set(header)
    assert len(rows) == 1 and len(rows[0]) == len(header)
    summary = PROBES[name].summary()
    if summary is not None and data == "rich":  # a sweep's summary table reads the probe's results
        values = [at(report["results"], *metric.path) for metric in summary.metrics]
        assert all(v is None or isinstance(v, float) for v in values) and any(v is not None for v in values)


def test_probes_with_fewer_val_videos_than_they_need_are_skipped(embeddings: dict[str, Path]) -> None:
    report = evaluate_embeddings(embeddings["lone"], tasks=tuple(PROBES), **SMALL)
    needy = [name for name, probe in PROBES.items() if probe.min_val_videos > 1]
    assert needy == ["kendall", "retrieval", "alignment"]
    assert report["skipped"] == [{"action": "a", "task": "kendall", "reason": "needs at least 2 val videos, found 1"},
                                 {"action": "a", "task": "retrieval",  # a label probe counts labelled videos
                                  "reason": "needs at least 2 labelled val videos, found 1"},
                                 {"action": "a", "task": "alignment",
                                  "reason": "needs at least 2 labelled val videos, found 1"}]


def test_two_probes_may_not_declare_different_options_of_one_name() -> None:
    class Clash(Probe):
        name = "clash"
        options = (Option("classifier", "logistic"),)

    with pytest.raises(TypeError, match="probe 'clash' declares an option 'classifier' unlike another probe's"):
        declared_options({**PROBES, "clash": Clash})


# --------------------------------------------------------------------------------------------
# A new probe: one class and one registry entry


class MeanNorm(Probe):
    """The toy metric: the mean p-norm of the val frames' embeddings."""

    name = "mean_norm"
    options = (Option("norm_order", 2, "p of the p-norm.", check=AT_LEAST_ONE),)

    def run(self, action: Action) -> Values:
        norms = np.concatenate([np.linalg.norm(v.embeddings, ord=self.o.norm_order, axis=1) for v in action.val])
        return {"mean_norm": float(norms.mean())}

    def aggregate(self, per_action: Sequence[Values]) -> float | None:
        return mean(per_action, "mean_norm")

    @classmethod
    def columns(cls, options: Mapping[str, Any]) -> list[Column]:
        return [Column("Mean norm", lambda values: fixed(values.get("mean_norm")))]

    @classmethod
    def provenance(cls, options: Mapping[str, Any]) -> str:
        return f"mean norm: p = {options['norm_order']}"

    @classmethod
    def protocol(cls, options: Mapping[str, Any]) -> str:
        return f"- Mean norm: the mean {options['norm_order']}-norm of every val frame's embedding."


def test_a_registered_probe_appears_in_the_cli_report_json_and_report_md(embeddings: dict[str, Path], tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    registry = {**PROBES, "mean_norm": MeanNorm}
    monkeypatch.setattr(cli.evaluate, "probes", registry)
    run_dir = tmp_path / "toy"
    run_dir.mkdir()
    (run_dir / "embeddings.h5").write_bytes(embeddings["rich"].read_bytes())

    help_text = " ".join(CliRunner().invoke(cli.main, ["evaluate", "--help"]).output.split())
    assert "--norm-order INTEGER" in help_text and "p of the p-norm. [default: 2]" in help_text
    assert "targeted, few_shot, robustness, mean_norm." in help_text
    bad = CliRunner().invoke(cli.main, ["evaluate", "--run", str(run_dir), "--norm-order", "0", "--no-plots"])
    assert bad.exit_code == 2 and "Invalid value for --norm-order: must be at least 1" in bad.output
    result = CliRunner().invoke(cli.main, ["evaluate", "--run", str(run_dir), "--tasks", "kendall,mean_norm",
                                           "--norm-order", "1", "--no-plots"])
    assert result.exit_code == 0, result.output
    assert "Mean norm" in result.stdout.splitlines()[0]

    report = json.loads((run_dir / "report.json").read_text())
    expected = {}
    for action in ("a", "b"):
        val = np.concatenate([separable(f"{action}v{i}", "val", action=action, flip=i == 1)["x"] for i in range(2)])
        expected[action] = float(np.abs(val).sum(axis=1).mean())
    assert report["options"]["norm_order"] == 1 and report["defaults"]["norm_order"] == 2
    assert report["options"]["tasks"] == ["kendall", "mean_norm"]
    assert {a: v["mean_norm"] for a, v in report["per_action"].items()} == pytest.approx(expected)
    assert report["results"]["mean_norm"] == pytest.approx(np.mean(list(expected.values())))
    assert list(report["results"]) == ["actions", "kendall", "mean_norm"]

    markdown = (run_dir / "report.md").read_text()
    assert "| Run | τ | Mean norm |" in markdown  # the columns of the tasks not run hold no number: left out
    assert f"| {report['results']['mean_norm']:.4f} |" in markdown
    assert markdown.rstrip().endswith("- Mean norm: the mean 1-norm of every val frame's embedding.")
    assert "; AP@K: stride 1; mean norm: p = 1; progression: fraction 1.0\n" in markdown  # its settings
    table = CliRunner().invoke(cli.main, ["evaluate", "--compare", str(run_dir)]).stdout
    assert table.splitlines()[0].endswith("| AP stride | Classification 0.1 | Classification 0.5 | "
                                          "Classification 1.0 | Progress | τ | AP@5 | AP@10 | AP@15 | "
                                          "Align acc (DTW) | Align acc (NN) | Unflagged acc "
                                          "| Out-of-order acc | Repeated acc | Background F1 | Idle bg acc "
                                          "| Cut-away bg acc | Distraction bg acc | Mean norm |")

    monkeypatch.undo()  # the built-in registry is untouched
    assert "mean_norm" not in PROBES and "--norm-order" not in CliRunner().invoke(cli.main, ["evaluate", "--help"]).output
    assert "norm_order" not in EvalOptions().as_dict()


def test_the_cli_starts_without_importing_the_probes() -> None:
    code = ("import sys; from click.testing import CliRunner; from vava.pipeline.cli import main; "
            "assert CliRunner().invoke(main, ['--help']).exit_code == 0; print('sklearn' in sys.modules)")
    found = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert found.stdout.strip() == "False"
