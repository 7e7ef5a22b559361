"""`vava extract --dry-run` (stages/extract/dry_run.py): frames and bytes against hand computation, nothing written."""
from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from tests.conftest import make_folder_dataset
from vava.core.records import VideoRecord
from vava.pipeline.cli import main
from vava.pipeline.datasets.folder import load_folder
from vava.stages.extract.dry_run import human_bytes, plan_extract
from vava.stages.extract.run import ExtractOptions

OPTIONS = ExtractOptions(image_size=64, target_fps=10.0, weights="random")


@pytest.fixture
def dataset(tmp_path: Path) -> Path:
    make_folder_dataset(tmp_path / "data", [18, 22, 25], fps=20.0)  # v0 val, v1 and v2 train
    return tmp_path / "data"


def test_frames_follow_the_decoders_keep_rule_and_bytes_the_map_size(dataset: Path) -> None:
    plan = plan_extract(load_folder(dataset), OPTIONS)
    # 20 -> 10 fps keeps frames 0, 2, 4, ...: ceil(n / 2) = 9, 11, 13
    assert [(r.split, r.action, r.videos, r.frames) for r in plan.rows] == [("train", "slide", 2, 24),
                                                                         ("val", "slide", 1, 9)]
    assert (plan.total.videos, plan.total.frames) == (3, 33)
    assert plan.frame_shape == (1024, 4, 4) and plan.frame_bytes == 1024 * 4 * 4 * 2
    assert plan.raw_bytes(plan.total) == 33 * 32768
    assert plan.estimated_bytes(plan.total) == round(33 * 32768 / 1.70)  # 636,085
    every = plan_extract(load_folder(dataset), ExtractOptions(image_size=224, backbone="resnet18", weights="random"))
    assert every.total.frames == 65 and every.frame_bytes == 256 * 14 * 14 * 2


def test_keep_masks_and_unreadable_videos(dataset: Path) -> None:
    records = load_folder(dataset)
    keep = np.zeros(18, dtype=bool)
    keep[5:12] = True  # kept by the mask: 5..11; by 10 fps: even frames -> 6, 8, 10
    records[0] = dataclasses.replace(records[0], keep=keep)
    (dataset / "videos" / "v1.mp4").unlink()
    plan = plan_extract(records, OPTIONS)
    assert (plan.total.videos, plan.total.frames) == (2, 3 + 13)
    assert list(plan.unreadable) == ["v1"] and plan.unreadable["v1"] == f"video 'v1': {dataset / 'videos' / 'v1.mp4'}: no such file"


def test_a_record_inside_a_container_file_is_counted_by_its_labels(tmp_path: Path) -> None:
    shard = tmp_path / "toy_train-0-of-1.tfrecord"
    shard.write_bytes(b"never read")
    record = VideoRecord("r", shard, "train", "pour", np.zeros(7, dtype=np.int64), fps=30.0, member=0)
    assert plan_extract([record], OPTIONS).total.frames == 3  # 30 -> 10 fps keeps frames 0, 3, 6
    plan = plan_extract([dataclasses.replace(record, labels=None)], OPTIONS)
    assert plan.unreadable == {"r": f"video 'r': {shard}: record at byte 0 has no labels to count its frames by"}


def test_human_bytes() -> None:
    assert [human_bytes(n) for n in (0, 1023, 1536, 392 * 1024, 3 * 2**40, 5 * 2**50)] == [
        "0 B", "1023 B", "1.5 KiB", "392.0 KiB", "3.0 TiB", "5120.0 TiB"]


def test_cli_prints_the_plan_and_creates_no_cache(dataset: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    result = CliRunner().invoke(main, ["extract", "--root", str(dataset), "--cache", str(cache), "--dry-run",
                                       "--image-size", "64", "--fps", "10", "--weights", "random"])
    assert result.exit_code == 0, result.output
    assert not cache.exists()
    assert result.stdout.splitlines() == [
        ("dry run, nothing decoded or written: resnet50 maps 1024x4x4 float16 at 64 px = 32.0 KiB a frame, "
         f"resampled to 10 fps; weights {plan_extract([], OPTIONS).weights[:23]} (read)"),
        "split  action  videos  frames  raw float16  on disk (est.)",
        "train  slide        2      24    768.0 KiB       451.8 KiB",
        "val    slide        1       9    288.0 KiB       169.4 KiB",
        "total               3      33      1.0 MiB       621.2 KiB",
        ("on disk is an estimate: raw / 1.70, the compression measured on 224 px ResNet-50 conv4 maps "
         "(bench/README.md)")]



def test_under_torchrun_rank_0_alone_prints_the_plan(dataset: Path, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    args = ["extract", "--root", str(dataset), "--cache", str(tmp_path / "cache"), "--dry-run", "--image-size", "64",
            "--weights", "random"]
    printed = {}
    for rank in (0, 1):
        for name, value in (("RANK", rank), ("LOCAL_RANK", rank), ("WORLD_SIZE", 2)):
            monkeypatch.setenv(name, str(value))
        result = CliRunner().invoke(main, args)
        assert result.exit_code == 0, result.output
        printed[rank] = result.output
    assert printed[0].startswith("dry run, nothing decoded or written") and printed[1] == ""
    assert not (tmp_path / "cache").exists()

def test_missing_imagenet_weights_stop_the_dry_run_with_what_to_do(dataset: Path, tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty-hub"))
    result = CliRunner().invoke(main, ["extract", "--root", str(dataset), "--cache", str(tmp_path / "c"), "--dry-run"])
    assert result.exit_code == 1 and "Traceback" not in result.output and not (tmp_path / "c").exists()
    message = result.output.strip()
    assert message.count("\n") == 0 and message.startswith("Error: --weights imagenet: ")
    assert "resnet50-0676ba61.pth not found" in message and "--weights random" in message
    assert result.stdout == ""  # no plan: the weights are checked first


def test_a_weights_file_that_does_not_fit_stops_the_dry_run(dataset: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.pth"
    bad.write_bytes(b"nonsense")
    result = CliRunner().invoke(main, ["extract", "--root", str(dataset), "--cache", str(tmp_path / "c"), "--dry-run",
                                       "--weights", str(bad)])
    assert result.exit_code == 1 and f"Error: --weights: {bad} is not a resnet50 state dict" in result.output
