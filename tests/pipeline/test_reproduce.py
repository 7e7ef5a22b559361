"""`vava reproduce`: objectives, the plan per protocol, the per-action mean, and a rerun that does no work."""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from vava.core.config import parse_overrides
from vava.core.errors import VavaError
from vava.pipeline.datasets import DATASETS, load_dataset
from vava.pipeline.reproduce import merge_action_models, parse_objectives, reproduce, reproduction_plan
from vava.stages.extract.run import ExtractOptions

TINY = parse_overrides(["data.frames_per_video=4", "data.batch_pairs=1", "model.conv_channels=8",
                        "model.fc_channels=8"])


def test_objectives_are_parsed_and_checked() -> None:
    assert parse_objectives("vava, tcc lav") == ["vava", "tcc", "lav"]
    with pytest.raises(VavaError, match=r"^--objectives: nope is unknown \(choose from .*vava"):
        parse_objectives("vava,nope")
    with pytest.raises(VavaError, match=r"^--objectives: none given"):
        parse_objectives(" , ")
    with pytest.raises(VavaError, match=r"^--objectives: an objective is named twice"):
        parse_objectives("tcc tcc")


def test_plan_has_a_run_per_objective_or_per_objective_and_action() -> None:
    joint = reproduction_plan(["vava", "tcc"], "penn_action", None)
    assert [(r.name, r.objective, r.overrides) for r in joint.runs] == [("vava", "vava", {}), ("tcc", "tcc", {})]
    per_action = reproduction_plan(["vava"], None, ["golf", "squat"])
    assert [(r.name, r.overrides) for r in per_action.runs] == [
        ("vava-golf", {"data.actions": ["golf"]}), ("vava-squat", {"data.actions": ["squat"]})]
    assert per_action.tables == {"Objectives": ["vava-golf", "vava-squat"]}


def test_an_action_that_is_no_plain_folder_name_is_refused_before_any_work(tmp_path: Path) -> None:
    """Per-action runs are folders OUT/runs/OBJECTIVE-ACTION: a folder manifest's action could climb out of OUT."""
    with pytest.raises(VavaError) as caught:
        reproduction_plan(["vava"], None, ["squat", "x/../../../escape"])
    assert str(caught.value) == ("--per-action: action 'x/../../../escape' names the run: 'vava-x/../../../escape' "
                                 "must be a plain name, without '/' or '\\'")
    root = tmp_path / "data"
    DATASETS["folder"].fixture(root)
    records = [dataclasses.replace(r, action="x/../../../escape") for r in load_dataset("folder", root)]
    with pytest.raises(VavaError, match="^--per-action: action 'x/../../../escape' names the run"):
        reproduce(records, tmp_path / "out", objectives=["vava"], dataset={"adapter": "folder"}, per_action=True,
                  extract_options=ExtractOptions(weights="random", image_size=32, progress=False))
    assert not (tmp_path / "out").exists()  # refused before the extraction


def test_per_action_models_are_averaged_unweighted() -> None:
    def report(action: str, accuracy: float, tau: float) -> dict:
        results = {"classification": {"1.0": accuracy}, "kendall": tau}
        return {"attrs": {"run": f"x-{action}"}, "options": {}, "results": {**results, "actions": 1},
                "per_action": {action: {**results, "train_videos": 3, "val_videos": 1}}}

    merged = merge_action_models("vava", [report("a", 0.5, 0.2), report("b", 0.9, 0.4), report("c", 0.1, None)])
    assert merged["results"]["classification"]["1.0"] == pytest.approx(0.5)
    assert merged["results"]["kendall"] == pytest.approx(0.3)  # a model without a number is left out
    assert merged["results"]["actions"] == 3 and sorted(merged["per_action"]) == ["a", "b", "c"]
    assert merged["attrs"]["run"] == "vava"


def test_reproduce_end_to_end_then_again_without_work(tmp_path: Path) -> None:
    root = tmp_path / "data"
    DATASETS["folder"].fixture(root)
    records = load_dataset("folder", root)
    options = ExtractOptions(weights="random", image_size=32, progress=False)
    lines: list[str] = []
    kwargs = {"objectives": ["vava"], "extract_options": options, "dataset": {"adapter": "folder"},
              "per_action": True, "steps": 2, "overrides": TINY, "log": lines.append}
    results, failed = reproduce(records, tmp_path / "out", **kwargs)
    assert failed == {} and results == tmp_path / "out" / "results-per-action.md"
    text = results.read_text()
    assert "## Per-action models: mean over 2 actions" in text and "| vava |" in text
    runs = {p.name for p in (tmp_path / "out" / "runs").iterdir() if p.is_dir()}
    assert runs == {"vava-fill", "vava-stations"}
    for action in ("fill", "stations"):  # each model embedded only its own action's videos
        report = json.loads((tmp_path / "out" / "runs" / f"vava-{action}" / "report.json").read_text())
        assert list(report["per_action"]) == [action]
    lines.clear()
    reproduce(records, tmp_path / "out", **kwargs)
    assert any("0 videos extracted, 8 cached" in line for line in lines)
    assert not any("done in" in line for line in lines)  # every run reused

    lines.clear()  # another --image-size: a new feature set, so every run is made again on it
    bigger = {**kwargs, "extract_options": dataclasses.replace(options, image_size=48)}
    results, failed = reproduce(records, tmp_path / "out", **bigger)
    assert failed == {} and sum("done in" in line for line in lines) == 2
    stale = tmp_path / "out" / "runs" / "stale"
    assert sorted(p.name for p in stale.iterdir()) == ["vava-fill.1", "vava-stations.1"]
    assert any(line.endswith(f"the feature set changed since this run was made: the old run was moved to "
                             f"{stale / 'vava-fill.1'}") for line in lines)

def _reproduce(records: list, out: Path, lines: list[str], **kwargs: object) -> tuple[Path, dict[str, str]]:
    options = ExtractOptions(weights="random", image_size=32, progress=False)
    return reproduce(records, out, **{"objectives": ["vava"], "extract_options": options,
                                      "dataset": {"adapter": "folder"}, "steps": 2, "overrides": TINY,
                                      "log": lines.append, **kwargs})


def test_the_plan_is_printed_before_any_work_and_each_run_says_its_steps(tmp_path: Path) -> None:
    root = tmp_path / "data"
    DATASETS["folder"].fixture(root)
    lines: list[str] = []
    _reproduce(load_dataset("folder", root), tmp_path / "out", lines, objectives=["vava", "tcc"], seeds=[0, 1])
    assert lines[0] == "plan: folder, 8 videos, one joint model: 2 runs (vava, tcc) x 2 seeds (0, 1)"
    assert lines[1] == "  steps: 2 per run (config defaults, --steps), 8 in all"
    assert lines[2].startswith("  time: about ") and " s a step on cpu (rough: the embedder timed here), about " in lines[2]
    assert lines[2].endswith(" of training in all; each run prints its own estimate after its first steps")
    assert lines[3] == "  evaluation: the defaults"
    assert lines[4].startswith("features: ")  # the extraction comes after the plan
    assert "[1/2] vava: vava, 2 steps" in lines and "[2/2] tcc: tcc, 2 steps" in lines


def test_the_papers_kendall_stride_is_the_default_and_a_given_one_evaluates_again_without_training(
        tmp_path: Path) -> None:
    root = tmp_path / "data"
    DATASETS["folder"].fixture(root)
    records, out, lines = load_dataset("folder", root), tmp_path / "out", []
    _reproduce(records, out, lines, dataset={"adapter": "penn_action"})  # records of any adapter read alike
    report = json.loads((out / "runs" / "vava" / "report.json").read_text())
    assert report["options"]["kendall_stride"] == 5 and "  evaluation: kendall_stride=5" in lines
    checkpoint = (out / "runs" / "vava" / "checkpoints" / "last.pt").stat().st_mtime_ns
    lines.clear()
    _reproduce(records, out, lines, dataset={"adapter": "penn_action"}, evaluation={"kendall_stride": 2, "ks": [5]})
    report = json.loads((out / "runs" / "vava" / "report.json").read_text())
    assert report["options"]["kendall_stride"] == 2 and report["options"]["ks"] == [5]
    assert "    evaluation options changed: evaluating again" in lines
    assert (out / "runs" / "vava" / "checkpoints" / "last.pt").stat().st_mtime_ns == checkpoint  # not retrained
    assert not (out / "runs" / "stale").exists()


def test_joint_and_per_action_reports_share_out_without_replacing_each_other(tmp_path: Path) -> None:
    root = tmp_path / "data"
    DATASETS["folder"].fixture(root)
    records, out = load_dataset("folder", root), tmp_path / "out"
    joint, _ = _reproduce(records, out, [])
    per_action, _ = _reproduce(records, out, [], per_action=True)
    assert (joint, per_action) == (out / "results.md", out / "results-per-action.md")
    assert "(one model)" in joint.read_text() and "(one model per action)" in per_action.read_text()
