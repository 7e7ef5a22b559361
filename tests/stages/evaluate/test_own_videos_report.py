"""What a report tells about a user's own videos: the time-only reference row, columns that cannot apply left
out, grouped "not computed" notes, the note on a negative progress R^2, and the alignment plot's pair."""
from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import pytest

from tests.stages.evaluate.helpers import separable, video, write_h5
from vava.stages.evaluate import run as run_module
from vava.stages.evaluate.report import evaluate_embeddings, render_text, write_report
from vava.stages.evaluate.run import evaluate_run, write_plots

TASKS = {"tasks": ("classification", "progress", "kendall", "targeted"), "fractions": (1.0,)}


def mirrored(tmp_path: Path) -> Path:
    """Two actions whose val videos' embeddings run backwards in time: a classifier of the embedding gets 25 % of
    the val frames and progress fits go the wrong way, while the phases follow time (time alone: 100 %)."""
    videos = [separable(f"{action}{i}", "train", action=action) for action in "ab" for i in range(2)]
    videos += [separable(f"{action}{i}", "val", flip=True, action=action) for action in "ab" for i in (2, 3)]
    return write_h5(tmp_path / "e.h5", videos)


def test_every_report_gets_the_time_only_reference_row(tmp_path: Path) -> None:
    report = evaluate_embeddings(mirrored(tmp_path), **TASKS)
    assert report["results"]["classification"]["1.0"] == 0.25
    time = report["references"]["time"]
    assert set(time) == {"results", "per_action", "skipped"}
    assert time["results"]["classification"]["1.0"] == 1.0  # t/T alone
    assert time["results"]["kendall"] == pytest.approx(1.0)  # monotone by construction
    write_report(tmp_path, report)
    markdown = (tmp_path / "report.md").read_text()
    assert "| toy | 25.00 | " in markdown and "| time only (reference) | 100.00 | " in markdown
    assert "time only (reference): the same probes on each frame's position t/T alone" in markdown
    lines = render_text(report).splitlines()
    assert lines[2].startswith("toy  ") and lines[3].startswith("time only (reference)  ")
    assert json.loads((tmp_path / "report.json").read_text())["references"]["time"]["results"]["actions"] == 2


def test_the_reference_row_can_be_left_out_and_a_time_only_file_gets_none(tmp_path: Path) -> None:
    assert "references" not in evaluate_embeddings(mirrored(tmp_path), time_reference=False, **TASKS)
    path = write_h5(tmp_path / "t.h5", [video("t0", [[0.0], [0.5]], [0, 1], split="train"),
                                        video("t1", [[0.0], [0.5]], [0, 1])])
    with h5py.File(path, "a") as handle:
        handle.attrs.update({"embedder": "identity", "identity_kind": "time"})
    assert "references" not in evaluate_embeddings(path, tasks=("classification",))


def test_columns_without_a_number_are_left_out_and_named(tmp_path: Path) -> None:
    report = evaluate_embeddings(mirrored(tmp_path), **TASKS)  # no flags, no background label; AP@K not asked for
    write_report(tmp_path, report)
    markdown = (tmp_path / "report.md").read_text()
    results = markdown.split("## Results (unweighted mean over actions)\n\n")[1].split("\n\n")[0]
    assert results.splitlines()[0] == "| Run | Classification 1.0 | Progress | τ | Unflagged acc |"
    assert ("Not shown, no number in any row: Out-of-order acc, Repeated acc, Background F1, Idle bg acc, "
            "Cut-away bg acc, Distraction bg acc.") in markdown
    per_action = markdown.split("## Per action\n\n")[1].splitlines()[0]
    assert "Repeated acc" not in per_action and "Unflagged acc" in per_action
    assert ("not shown, no number in any row: Out-of-order acc, Repeated acc, Background F1, Idle bg acc, "
            "Cut-away bg acc, Distraction bg acc") in render_text(report)
    # each missing targeted metric is explained once, not once per action
    notes = markdown.split("Not computed:\n\n")[1].split("\n\n")[0].splitlines()
    assert notes == ["- Out-of-order acc (every action): no labelled val frame flagged out of order",
                     "- Repeated acc (every action): no labelled val frame flagged repeated",
                     "- Background F1 (every action): the videos have no background label"]


def test_a_negative_progress_r2_is_explained(tmp_path: Path) -> None:
    report = evaluate_embeddings(mirrored(tmp_path), **TASKS)
    assert report["results"]["progress"] < 0
    write_report(tmp_path, report)
    markdown = (tmp_path / "report.md").read_text()
    assert f"## Progress below 0\n\nR² = {report['results']['progress']:.4f}: the per-event linear regressions" in \
        markdown and "this is a result, not an error" in markdown
    positive = evaluate_embeddings(write_h5(tmp_path / "p.h5", [separable("a0", "train"), separable("a1", "train"),
                                                                   separable("a2", "val"), separable("a3", "val")]),
                                   **TASKS)
    write_report(tmp_path / "p", positive)
    assert positive["results"]["progress"] > 0 and "Progress below 0" not in (tmp_path / "p" / "report.md").read_text()


def _run_with(tmp_path: Path, videos: list[dict]) -> Path:
    run = tmp_path / "run"
    run.mkdir()
    write_h5(run / "embeddings.h5", videos)
    return run


def test_the_alignment_plot_pairs_two_val_videos_of_one_action(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    # "pour" comes first but has one val video; the pair is stir's two, never pour2 with stir0
    videos = [separable("pour0", "train", action="pour"), separable("pour2", "val", action="pour"),
              separable("stir0", "val", action="stir"), separable("stir1", "val", action="stir")]
    drawn = {}
    real = run_module.plot_alignment
    monkeypatch.setattr(run_module, "plot_alignment", lambda *args, **kwargs: drawn.update(kwargs) or real(*args,
                                                                                                          **kwargs))
    plots = write_plots(_run_with(tmp_path, videos))
    assert [p.name for p in plots.written] == ["tsne.png", "alignment.png"] and plots.skipped == {}
    assert drawn["names"] == ("stir0", "stir1")


def test_the_alignment_plot_is_skipped_with_the_reason_when_no_action_has_two_val_videos(tmp_path: Path) -> None:
    videos = [separable("pour0", "train", action="pour"), separable("pour2", "val", action="pour"),
              separable("stir1", "train", action="stir"), separable("stir0", "val", action="stir")]
    plots = write_plots(_run_with(tmp_path, videos))
    assert [p.name for p in plots.written] == ["tsne.png"]
    assert plots.skipped == {"alignment.png": "no action has two val videos to align"}
    assert not (tmp_path / "run" / "plots" / "alignment.png").exists()
    report, drawn = evaluate_run(tmp_path / "run", tasks=("classification",))
    assert drawn.skipped == plots.skipped and np.isfinite(report["results"]["classification"]["1.0"])
