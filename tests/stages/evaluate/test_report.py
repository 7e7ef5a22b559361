"""`evaluate`'s report (stages/evaluate/report.py): loading, background, per-action averaging,
degenerate input, skips, report files and tables; `--compare` of a report.json that is not one."""
from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from tests.helpers import cli, one_line_error
from tests.stages.evaluate.helpers import ramp, separable, video, wild_report, write_h5
from vava.core.embeddings_file import load_embeddings, natural_key
from vava.core.errors import VavaError
from vava.core.report_file import load_report
from vava.stages.evaluate.report import compare_reports, evaluate_embeddings, render_text, write_report
from vava.stages.evaluate.tables import markdown, report_markdown, skip_lines

# --------------------------------------------------------------------------------------------
# Loading, background, per-action averaging, degenerate input


def test_natural_key() -> None:
    assert sorted(["v10", "v2", "v1", "v01"], key=natural_key) == ["v01", "v1", "v2", "v10"]


def test_per_action_unweighted_mean(tmp_path: Path) -> None:
    videos = [video(f"a{i}", ramp(6), [0] * 6, action="jump") for i in range(3)]
    videos += [video("b1", ramp(4), [0] * 4, action="swing"), video("b2", ramp(4)[::-1], [0] * 4, action="swing")]
    report = evaluate_embeddings(write_h5(tmp_path / "e.h5", videos), tasks=("kendall",))
    assert report["per_action"]["jump"]["kendall"] == pytest.approx(1.0)
    assert report["per_action"]["swing"]["kendall"] == pytest.approx(-1.0)
    assert report["results"]["kendall"] == pytest.approx(0.0)  # not the pair-weighted (6 - 2) / 8


def test_background_keep_and_drop(tmp_path: Path) -> None:
    phases = ["bg", "reach", "grasp"]
    # background label 0; the background frames sit far from everything else
    a = video("a", [[100.0], [0.0], [0.1], [5.0], [100.1]], [0, 1, 1, 2, 0], phases=phases, bg=0)
    b = video("b", [[0.05], [100.2], [5.1], [5.2]], [1, 0, 2, 2], phases=phases, bg=0)
    path = write_h5(tmp_path / "e.h5", [a, b])
    dropped = load_embeddings(path, background="drop").videos[0]
    assert dropped.labels.tolist() == [0, 0, 1] and dropped.embeddings[:, 0].tolist() == pytest.approx([0, 0.1, 5])
    assert dropped.phases == ("reach", "grasp") and dropped.background_label == -1
    kept = evaluate_embeddings(path, tasks=("retrieval",), ks=(1, 2))
    without = evaluate_embeddings(path, tasks=("retrieval",), ks=(1, 2), background="drop")
    assert without["options"]["background"] == "drop"
    queries = [r["per_action"]["a"]["retrieval"]["queries"] for r in (kept, without)]
    assert queries == [9, 6]
    # K=2 by hand. Without background: a -> 1/2, 1/2, 1; b -> 1, 1/2, 1/2 (4 of 6). With it, the background
    # frames are one more class: a -> 1/2 (bg), 1/2, 1/2, 1, 1/2 (bg); b -> 1, 1 (bg), 1/2, 1/2 (6 of 9).
    assert without["results"]["retrieval"]["frame_weighted"] == {"1": 1.0, "2": pytest.approx(4 / 6)}
    assert kept["results"]["retrieval"]["frame_weighted"] == {"1": 1.0, "2": pytest.approx(6 / 9)}
    assert kept["results"]["retrieval"]["video_mean"]["2"] == pytest.approx((3 / 5 + 3 / 4) / 2)


def test_degenerate_inputs_raise_clear_errors(tmp_path: Path) -> None:
    nan = video("bad_video", [[0.0], [np.nan]], [0, 1])
    with pytest.raises(VavaError, match="bad_video.*NaN"):
        load_embeddings(write_h5(tmp_path / "nan.h5", [nan, video("ok", [[0.0], [1.0]], [0, 1])]))
    only_train = write_h5(tmp_path / "train.h5", [video("t", [[0.0], [1.0]], [0, 1], split="train")])
    with pytest.raises(VavaError, match="split 'val' has no videos"):
        evaluate_embeddings(only_train)
    only_val = write_h5(tmp_path / "val.h5", [video("v", [[0.0], [1.0]], [0, 1])])
    with pytest.raises(VavaError, match="split 'train' has no videos.*classification"):
        evaluate_embeddings(only_val)
    with pytest.raises(VavaError, match="labels for 2 frames"):
        load_embeddings(write_h5(tmp_path / "len.h5", [{**video("short", [[0.0], [1.0]], [0, 1]), "y": np.zeros(3)}]))
    with pytest.raises(VavaError, match="no such file"):
        load_embeddings(tmp_path / "missing.h5")
    with pytest.raises(VavaError, match="unknown evaluation option"):
        evaluate_embeddings(only_val, tasks=("kendall",), stride=2)
    with pytest.raises(VavaError, match="background"):
        evaluate_embeddings(only_val, background="maybe")


def test_small_inputs_skip_with_reasons(tmp_path: Path) -> None:
    videos = [video("t1", ramp(7), [0, 0, 1, 1, 1, 2, 2], split="train"),
              video("t2", ramp(3), [0, 0, 0], split="train"),          # single phase, shorter than the stride
              video("v1", ramp(7), [0, 0, 1, 1, 2, 2, 2])]            # one val video only
    report = evaluate_embeddings(write_h5(tmp_path / "e.h5", videos), kendall_stride=4, retrieval_stride=4)
    results = report["results"]
    assert results["kendall"] is None and results["retrieval"]["frame_weighted"]["5"] is None
    reasons = {s["task"]: s["reason"] for s in report["skipped"]}
    assert reasons == {"kendall": "needs at least 2 val videos, found 1",
                       "retrieval": "needs at least 2 labelled val videos, found 1",
                       "alignment": "needs at least 2 labelled val videos, found 1"}
    assert results["classification"]["1.0"] is not None and results["progress"] is not None


def test_label_probes_read_only_the_labelled_videos(tmp_path: Path) -> None:
    # action "jump": the first n train videos are counted among the labelled ones (t1), not u;
    # action "swing" has no labelled val video.
    videos = [video("t1", [[0.0], [1.0], [10.0], [11.0]], [0, 0, 1, 1], split="train", action="jump"),
              video("u", [[0.0], [10.0]], [-1, -1], split="train", action="jump"),
              video("v1", [[0.5], [10.5]], [0, 1], action="jump"), video("v2", [[10.2], [0.2]], [-1, -1], action="jump"),
              video("s1", [[0.0], [1.0]], [0, 1], split="train", action="swing"),
              video("s2", [[0.0], [1.0]], [-1, -1], action="swing"), video("s3", [[1.0], [0.0]], [-1, -1], action="swing")]
    report = evaluate_embeddings(write_h5(tmp_path / "e.h5", videos), tasks=("classification", "kendall"))
    jump, swing = report["per_action"]["jump"], report["per_action"]["swing"]
    assert jump["classification"] == {"0.1": 1.0, "0.5": 1.0, "1.0": 1.0}
    assert jump["classification_train_videos"] == {"0.1": 1, "0.5": 1, "1.0": 1}  # t1 only, not u
    assert jump["kendall"] == pytest.approx(-1.0) and swing["kendall"] == pytest.approx(-1.0)  # all val videos
    assert "classification" not in swing and report["results"]["classification"]["1.0"] == 1.0
    assert report["skipped"] == [{"action": "swing", "task": "classification", "reason": "no labelled val frames"}]
    only_val_labelled = [video("t", [[0.0], [1.0]], [-1, -1], split="train"), video("v", [[0.0], [1.0]], [0, 1])]
    report = evaluate_embeddings(write_h5(tmp_path / "v.h5", only_val_labelled), tasks=("classification",))
    assert report["skipped"][0]["reason"] == "no labelled train frames"


def test_skip_lines_group_actions(tmp_path: Path) -> None:
    videos = [video(f"{a}{i}", ramp(4), [-1] * 4, split=split, action=a)
              for a in ("jump", "swing") for i, split in enumerate(("train", "val", "val"))]
    report = evaluate_embeddings(write_h5(tmp_path / "e.h5", videos), tasks=("classification", "kendall"))
    assert skip_lines(report) == ["classification (every action): no labelled val frames"]
    _, md_path = write_report(tmp_path / "run", report)
    assert "## Skipped\n\n- classification (every action): no labelled val frames\n" in md_path.read_text()
    report["skipped"] = report["skipped"][:1]
    assert skip_lines(report) == ["classification (jump): no labelled val frames"]


def test_markdown_escapes_a_pipe_inside_a_cell() -> None:
    """A cell's `|` (a column name like "|Δ| < 1", or a run name) must not split it: every line of the table keeps
    as many cells as the header, which GitHub needs to render the table at all."""
    text = markdown(["Run", "Val plateau (|Δ| < 1)"], [["a|b", "2/3"]])
    assert text == "| Run | Val plateau (\\|Δ\\| < 1) |\n| --- | --- |\n| a\\|b | 2/3 |\n"
    assert {len(re.split(r"(?<!\\)\|", line)) for line in text.splitlines()} == {4}


# --------------------------------------------------------------------------------------------
# Report files


def test_report_files_and_tables(tmp_path: Path) -> None:
    videos = [separable(f"t{i}", "train") for i in range(3)] + [separable(f"v{i}", "val") for i in range(2)]
    report = evaluate_embeddings(write_h5(tmp_path / "e.h5", videos), ks=(1, 2))
    json_path, md_path = write_report(tmp_path / "run", report)
    saved = json.loads(json_path.read_text())
    assert {"file", "attrs", "options", "defaults", "software", "videos", "results", "per_action",
            "skipped"} <= set(saved)
    assert saved["options"]["kendall_stride"] == 1 and saved["defaults"]["background"] == "keep"
    assert saved["attrs"]["objective"] == "vava" and saved["videos"] == {"train": 3, "val": 2}
    assert set(saved["results"]) == {"actions", "classification", "progress", "kendall", "retrieval", "alignment",
                                     "targeted"}
    assert load_report(tmp_path / "run") == saved
    markdown = md_path.read_text()
    header = ("| Run | Classification 0.1 | Classification 0.5 | Classification 1.0 | Progress | τ | AP@1 | AP@2 |")
    assert header in markdown
    accuracy = 100 * report["results"]["classification"]["1.0"]
    assert f"| toy | {100 * report['results']['classification']['0.1']:.2f} |" in markdown
    assert f"{accuracy:.2f}" in markdown and "| video mean (CARL) |" in markdown
    table = compare_reports([report, evaluate_embeddings(tmp_path / "e.h5", ks=(1, 2), background="drop")])
    lines = table.strip().splitlines()
    assert len(lines) == 4 and lines[0].startswith("| Run | Background |") and "| toy | without |" in lines[3]
    text = render_text(report).splitlines()
    assert text[0].split()[:3] == ["Run", "Classification", "0.1"] and text[2].startswith("toy")


def test_report_md_is_unchanged_byte_for_byte(tmp_path: Path) -> None:
    """Every section of report.md (provenance, tables, probe sections, skips, protocol) of a fixed report; a
    change of layout on purpose rewrites expected_report.md."""
    assert report_markdown(wild_report(tmp_path)) == Path(__file__).with_name("expected_report.md").read_text()


# -- compare names a report.json that is not one ---------------------------------------------------


@pytest.mark.parametrize("text", ["[1]", '{"a": 1}', '{"options": {"fractions": [[1]], "ks": []}}'])
def test_compare_names_a_report_that_is_not_one(tmp_path: Path, text: str) -> None:
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "report.json").write_text(text)
    one_line_error(cli("evaluate", "--compare", tmp_path / "run"),
                   rf"^Error: {re.escape(str(tmp_path / 'run' / 'report.json'))}: not a vava report \(")
