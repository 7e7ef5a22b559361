"""Videos without labels, end to end through the CLI: extract, every objective, embed and evaluate
(label-free probes run, the others are skipped with the reason), alone and mixed with labelled ones."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner, Result

from tests.conftest import make_folder_dataset
from vava.cache.store import FeatureSet
from vava.pipeline.cli import main
from vava.pipeline.datasets.folder import write_manifest

SELF_SUPERVISED = ("vava", "tcc", "lav", "gta", "tcn", "sal")
TINY = ["--steps", "2", "--quiet", "--set", "model.conv_channels=8", "--set", "model.fc_channels=8",
        "--set", "data.frames_per_video=6", "--set", "data.batch_pairs=2"]
LABEL_PROBES = ("classification", "progress", "retrieval", "targeted", "alignment")  # in run order


def run(*args: str) -> Result:
    result = CliRunner().invoke(main, list(args))
    assert "Traceback" not in result.output
    return result


def write_dataset(root: Path, unlabelled: set[int]) -> None:
    """Five 20-frame videos (v0, v1 val; v2-v4 train); those in `unlabelled` lose their labels."""
    entries = make_folder_dataset(root, [20] * 5, split_val=2)
    for i in unlabelled:
        del entries[i]["labels"], entries[i]["phases"]
    write_manifest(root, entries)


def extract(root: Path, cache: Path) -> str:
    result = run("extract", "--root", str(root), "--cache", str(cache), "--weights", "random", "--image-size", "64",
                 "--backbone", "resnet18", "--quiet")
    assert result.exit_code == 0, result.output
    return result.stdout.strip().splitlines()[-1]


def train_embed_evaluate(features: str, run_dir: Path, *evaluate_options: str) -> Result:
    trained = run("train", "--features", features, "--out", str(run_dir), *TINY)
    assert trained.exit_code == 0, trained.output
    assert run("embed", "--run", str(run_dir), "--quiet").exit_code == 0
    return run("evaluate", "--run", str(run_dir), "--k", "1,2", *evaluate_options)


@pytest.fixture(scope="module")
def unlabelled_features(tmp_path_factory: pytest.TempPathFactory) -> str:
    root = tmp_path_factory.mktemp("unlabelled")
    write_dataset(root / "data", unlabelled={0, 1, 2, 3, 4})
    return extract(root / "data", root / "cache")


def test_unlabelled_frames_are_cached_as_minus_one(unlabelled_features: str) -> None:
    feature_set = FeatureSet.open(unlabelled_features)
    videos = feature_set.videos()
    assert len(videos) == 5
    for video in videos:
        assert feature_set.labels(video.id).tolist() == [-1] * 20


@pytest.mark.parametrize("objective", SELF_SUPERVISED)
def test_every_self_supervised_objective_trains_without_labels(unlabelled_features: str, tmp_path: Path,
                                                               objective: str) -> None:
    result = run("train", "--features", unlabelled_features, "--out", str(tmp_path / "run"), "--objective",
                 objective, *TINY)
    assert result.exit_code == 0, result.output
    assert f"trained {objective} from step 0 to 2" in result.stderr
    loss = float(result.stderr.rsplit("last loss ", 1)[1])
    assert np.isfinite(loss)


def test_supervised_refuses_a_train_split_without_labels(unlabelled_features: str, tmp_path: Path) -> None:
    result = run("train", "--features", unlabelled_features, "--out", str(tmp_path / "run"), "--objective",
                 "supervised", *TINY)
    assert result.exit_code == 1
    assert result.output == (f"Error: {unlabelled_features}: objective supervised needs phase labels, but the train "
                             "split has no labels (every frame is -1); pick a self-supervised objective such as "
                             "vava\n")
    assert not (tmp_path / "run").exists()


def test_unlabelled_run_evaluates_kendall_and_skips_the_label_probes(unlabelled_features: str, tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    result = train_embed_evaluate(unlabelled_features, run_dir)
    assert result.exit_code == 0, result.output
    report = json.loads((run_dir / "report.json").read_text())
    assert report["videos"] == {"train": 3, "val": 2}
    assert -1 <= report["results"]["kendall"] <= 1  # the one probe that needs no labels ran
    assert report["per_action"]["slide"]["kendall_pairs"] == 2
    assert report["results"]["classification"] == {"0.1": None, "0.5": None, "1.0": None}
    assert report["results"]["progress"] is None
    assert report["skipped"] == [{"action": "slide", "task": task, "reason": "no labelled val frames"}
                                 for task in LABEL_PROBES]
    for task in LABEL_PROBES:
        assert f"skipped {task} (slide): no labelled val frames" in result.stderr
        assert f"- {task} (slide): no labelled val frames" in (run_dir / "report.md").read_text()
    assert (run_dir / "plots" / "alignment.png").is_file()  # two val videos, no labels to colour them by


def test_mixed_labels_probe_the_labelled_videos(tmp_path: Path) -> None:
    write_dataset(tmp_path / "data", unlabelled={1, 3})  # v1 (val) and v3 (train) unlabelled
    features = extract(tmp_path / "data", tmp_path / "cache")
    run_dir = tmp_path / "run"
    assert run("train", "--features", features, "--out", str(tmp_path / "sup"), "--objective", "supervised",
               *TINY).exit_code == 0  # labels in part of the train split are enough
    result = train_embed_evaluate(features, run_dir, "--no-plots")
    assert result.exit_code == 0, result.output
    report = json.loads((run_dir / "report.json").read_text())
    values = report["per_action"]["slide"]
    assert values["train_videos"] == 3 and values["val_videos"] == 2
    # classification fits on the labelled train videos v2 and v4 and scores the 20 frames of v0
    assert values["classification_train_videos"] == {"0.1": 1, "0.5": 1, "1.0": 2}
    assert values["targeted_frames"]["unflagged_accuracy"] == 20
    assert values["kendall_pairs"] == 2  # tau reads both val videos, labelled or not
    assert report["skipped"] == [{"action": "slide", "task": task, "reason": "needs at least 2 labelled val videos, "
                                  "found 1"} for task in ("retrieval", "alignment")]
    for task in ("retrieval", "alignment"):
        assert f"skipped {task} (slide): needs at least 2 labelled val videos, found 1" in result.stderr


def test_segment_annotated_videos_end_to_end(tmp_path: Path) -> None:
    """A folder of videos plus segments in seconds -> `vava data manifest` -> reproduce (extract, train,
    embed, evaluate): the cached labels are the segments' frames, background between them."""
    root = tmp_path / "videos"
    make_folder_dataset(tmp_path / "source", [20] * 4)
    root.mkdir()
    (tmp_path / "source" / "videos").rename(root / "slide")  # 15 fps videos in an action folder
    (root / "segments.csv").write_text("video,start,end,phase\n" + "".join(
        f"v{i},0.2,0.6,push\nv{i},0.8,1.2,pull\n" for i in range(4)))
    made = run("data", "manifest", str(root), "--out", str(root / "manifest.jsonl"),
               "--segments", str(root / "segments.csv"), "--val-fraction", "0.25", "--seed", "0")
    assert made.exit_code == 0, made.output
    done = run("reproduce", "--root", str(root), "--out", str(tmp_path / "out"), "--objectives", "tcc",
               "--weights", "random", "--image-size", "64", "--backbone", "resnet18", "--steps", "2",
               "--set", "model.conv_channels=8", "--set", "model.fc_channels=8", "--set", "data.frames_per_video=6",
               "--set", "data.batch_pairs=1")
    assert done.exit_code == 0, done.output
    (features,) = (p for p in (tmp_path / "out" / "cache").iterdir() if not p.name.startswith("."))  # not .locks
    labels = FeatureSet.open(features).labels("v0")  # 15 fps: 0.2-0.6 s = frames 3..9, 0.8-1.2 s = 12..18
    assert labels.tolist() == [0] * 3 + [1] * 7 + [0] * 2 + [2] * 7 + [0]
    report = json.loads((tmp_path / "out" / "runs" / "tcc" / "report.json").read_text())
    assert report["videos"] == {"train": 3, "val": 1} and "1.0" in report["results"]["classification"]
