"""The `vava` CLI: option errors, summaries, the printed path, and the cache commands (broken metadata, stray
folders, sets written before checksums); config errors in one line, sweep's --results, data fixture."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import zarr
from click.testing import CliRunner

from tests.conftest import make_folder_dataset, write_toy_features
from tests.helpers import EXTRACT, cli, one_line_error, single_line
from tests.pipeline.sweep.helpers import plan_file
from vava.cache.store import FeatureSet
from vava.pipeline.cli import main
from vava.pipeline.datasets.folder import write_manifest


@pytest.mark.parametrize(
    ("extra", "message"),
    [(["--backbone", "vgg"], "Invalid value for --backbone: unknown backbone 'vgg'"),
     (["--image-size", "100"], "Invalid value for --image-size: 100 is not a positive multiple of 16"),
     (["--resize", "zoom"], "Invalid value for '--resize'"),
     (["--workers", "0"], "Invalid value for --workers: must be at least 1")],
)
def test_bad_extract_options(tiny_dataset: Path, tmp_path: Path, extra: list[str], message: str) -> None:
    result = cli(*EXTRACT, "--root", str(tiny_dataset), "--cache", str(tmp_path / "c"), *extra)
    assert result.exit_code == 2 and message in result.output
    assert "Traceback" not in result.output and not (tmp_path / "c").exists()


def test_missing_root_and_manifest_errors(tmp_path: Path) -> None:
    result = cli(*EXTRACT, "--root", str(tmp_path / "nope"), "--cache", str(tmp_path / "c"))
    assert result.exit_code == 2 and "Invalid value for --root:" in result.output and "does not exist" in result.output
    result = cli(*EXTRACT, "--root", str(tmp_path), "--cache", str(tmp_path / "c"))
    assert result.exit_code == 1 and "Error: " in result.output and "manifest.jsonl: missing" in result.output
    assert "Traceback" not in result.output


def test_extract_then_cache_commands(tiny_dataset: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    result = cli(*EXTRACT, "--root", str(tiny_dataset), "--cache", str(cache))
    assert result.exit_code == 0, result.output
    path = result.stdout.strip().splitlines()[-1]
    assert Path(path).parent == cache
    assert "3 videos: 3 extracted (65 frames" in result.stderr

    again = cli(*EXTRACT, "--root", str(tiny_dataset), "--cache", str(cache))
    assert again.stdout.strip().splitlines()[-1] == path
    assert "0 extracted" in again.stderr and "3 already cached" in again.stderr and "nothing to do" in again.stderr

    listing = cli("cache", "ls", str(cache))
    assert listing.exit_code == 0
    header, row = listing.stdout.splitlines()
    assert header.split() == ["path", "backbone/cut", "size", "weights", "videos", "done", "dataset", "root"]
    assert row.split()[:3] == [path, "resnet50/layer3.2", "64px"] and row.split()[4:] == ["3/3", str(tiny_dataset)]
    assert header.index("videos done") == row.index("3/3")  # aligned under its header

    info = cli("cache", "info", path, "--json")
    data = json.loads(info.stdout)
    assert data["videos_complete"] == 3 and data["frames"] == 65 and data["frame_shape"] == [1024, 4, 4]
    assert data["inputs"]["weights"].startswith("random:0:") and data["compression_ratio"] > 1
    assert "fingerprint: " in cli("cache", "info", path).output

    assert cli("cache", "verify", path).exit_code == 0
    assert cli("cache", "rm", path).exit_code == 1  # asks first; no input means no
    assert Path(path).exists()
    assert cli("cache", "rm", "--yes", path).exit_code == 0 and not Path(path).exists()


def test_cache_commands_on_a_set_with_damaged_inputs(tmp_path: Path) -> None:
    path = write_toy_features(tmp_path / "cache" / "toyfeatures00000")
    meta = json.loads((path / "zarr.json").read_text())
    del meta["attributes"]["inputs"]["layer"]
    (path / "zarr.json").write_text(json.dumps(meta))
    problem = (f"{path}: damaged feature-set inputs in its zarr.json (inputs has no layer); remove the set "
               "(`vava cache rm`) and extract it again")
    info = cli("cache", "info", str(path))
    assert info.exit_code == 1 and info.output == f"Error: {problem}\n"
    listing = cli("cache", "ls", str(tmp_path / "cache"))
    assert listing.stderr == f"skipped: {problem}\nno feature sets in {tmp_path / 'cache'}\n"
    assert cli("cache", "rm", "--yes", str(path)).exit_code == 0 and not path.exists()


def test_failed_videos_give_exit_code_one_and_still_print_path(tiny_dataset: Path, tmp_path: Path) -> None:
    (tiny_dataset / "videos" / "v1.mp4").unlink()
    result = cli(*EXTRACT, "--root", str(tiny_dataset), "--cache", str(tmp_path / "c"))
    assert result.exit_code == 1
    assert "failed: video 'v1': file not found" in result.stderr and "1 failed" in result.stderr
    assert result.stdout.strip().splitlines()[-1].startswith(str(tmp_path / "c"))


def test_cache_commands_on_bad_paths(tmp_path: Path) -> None:
    for args in (["cache", "info", str(tmp_path)], ["cache", "verify", str(tmp_path)], ["cache", "ls", str(tmp_path / "x")]):
        result = cli(*args)
        assert result.exit_code == 1 and result.output.startswith("Error: ") and "Traceback" not in result.output


def test_data_synth_writes_a_loadable_dataset(tmp_path: Path) -> None:
    out = tmp_path / "synth"
    result = cli("data", "synth", str(out), "--wild", "--actions", "2", "--videos", "3", "--size", "32",
                 "--frames", "16:20", "--background", "0.9")
    assert result.exit_code == 0, result.output
    assert result.stdout.strip().splitlines()[-1] == str(out)
    from vava.pipeline.datasets.folder import load_folder

    records = load_folder(out)
    assert len(records) == 6 and {r.action for r in records} == {"stations", "fill"}
    assert {r.split for r in records} == {"train", "val"}
    config = json.loads((out / "synth.json").read_text())["config"]
    assert config["variations"]["background"] == 0.9 and config["variations"]["redundant"] == 0.5
    assert config["benchmark"] == 3 and config["variations"]["nonmonotonic"] == 0.8  # the wild preset of v2 and v3
    assert all(r.flags is not None and r.flags.shape == r.labels.shape for r in records)


def test_synth_flags_reach_the_feature_cache(tmp_path: Path) -> None:
    """manifest `flags` -> extract (resampled to half the frame rate) -> FeatureSet.flags of the kept frames."""
    import numpy as np

    from vava.cache.store import FeatureSet
    from vava.pipeline.datasets.folder import load_folder

    data = tmp_path / "data"
    synth = cli("data", "synth", str(data), "--wild", "--actions", "1", "--videos", "2", "--size", "32",
                "--frames", "16:20")
    assert synth.exit_code == 0, synth.output
    result = cli(*EXTRACT, "--image-size", "32", "--fps", "7.5", "--root", str(data), "--cache", str(tmp_path / "c"))
    assert result.exit_code == 0, result.output
    features = FeatureSet.open(result.stdout.strip().splitlines()[-1])
    records = load_folder(data)
    assert any(r.flags.any() for r in records)
    for record in records:
        index = features.frame_index(record.id)
        assert len(index) < record.num_frames
        assert np.array_equal(features.flags(record.id), record.flags[index])


@pytest.mark.parametrize(
    ("args", "message"),
    [(["--noise", "1.5"], "Invalid value for --noise: strength must be a number in [0, 1], got 1.5"),
     (["--frames", "40:30"], "Invalid value for --frames: min 40 > max 30"),
     (["--frames", "abc"], "'abc' is not MIN:MAX"),
     (["--size", "33"], "Invalid value for --size: must be even"),
     (["--benchmark", "4"], "Invalid value for --benchmark: must be one of 1, 2, 3, got 4")],
)
def test_data_synth_rejects_bad_options(tmp_path: Path, args: list[str], message: str) -> None:
    result = cli("data", "synth", str(tmp_path / "s"), *args)
    assert result.exit_code == 2 and message in result.output and "Traceback" not in result.output


def test_train_and_embed_commands(toy_features: Path, tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    tiny = ["--set", "model.conv_channels=8", "--set", "model.fc_channels=8", "--set", "data.frames_per_video=6"]
    result = cli("train", "--features", str(toy_features), "--out", str(run_dir), "--steps", "2", "--quiet", *tiny)
    assert result.exit_code == 0, result.output
    assert result.stdout.strip().splitlines()[-1] == str(run_dir)
    assert "trained vava from step 0 to 2" in result.stderr
    again = cli("train", "--features", str(toy_features), "--out", str(run_dir), "--steps", "2", "--quiet", *tiny)
    assert again.exit_code == 1 and "already holds a run; pass --resume" in again.output
    resumed = cli("train", "--features", str(toy_features), "--out", str(run_dir), "--steps", "3", "--resume",
                  "--quiet", *tiny)
    assert resumed.exit_code == 0 and "from step 2 to 3" in resumed.stderr

    embedded = cli("embed", "--run", str(run_dir), "--splits", "val", "--quiet")
    assert embedded.exit_code == 0, embedded.output
    assert embedded.stdout.strip().splitlines()[-1] == str(run_dir / "embeddings.h5")


def test_embed_identity_kinds_and_time_only_evaluated_end_to_end(toy_features: Path, tmp_path: Path) -> None:
    help_text = " ".join(cli("embed", "--help").output.split())
    assert all(kind in help_text for kind in ("features (pooled", "features- standardised", "time (t/T)"))
    bad = cli("embed", "--run", str(tmp_path / "bad"), "--features", str(toy_features), "--identity", "frames")
    assert bad.exit_code == 1 and "Traceback" not in bad.output
    assert "Error: --identity: 'frames' is not one of features, features-standardised, time" in bad.output

    runs = {"pooled": [], "time-only": ["time"], "z": ["features-standardised"]}  # bare --identity: features
    for name, kind in runs.items():
        embedded = cli("embed", "--run", str(tmp_path / name), "--features", str(toy_features), "--identity", *kind,
                       "--quiet")
        assert embedded.exit_code == 0, embedded.output
        plots = [] if name == "time-only" else ["--no-plots"]  # the plots of 1-D embeddings too
        evaluated = cli("evaluate", "--run", str(tmp_path / name), "--k", "1,2", *plots)
        assert evaluated.exit_code == 0, evaluated.output
    assert {p.name for p in (tmp_path / "time-only" / "plots").iterdir()} == {"tsne.png"}  # one val video an action
    report = json.loads((tmp_path / "time-only" / "report.json").read_text())
    assert report["attrs"]["identity_kind"] == "time"
    # toy labels are min(floor(3t / T), 2), a function of t/T: time alone nearly separates the phases (chance: 1/3),
    # and progress targets (t - tau_e) / T are t/T less a per-video offset close to e/3
    assert report["results"]["classification"]["1.0"] > 0.95 and report["results"]["progress"] > 0.95
    assert "- reference row: time only (`--identity time`)" in (tmp_path / "time-only" / "report.md").read_text()
    table = cli("evaluate", *(a for name in runs for a in ("--compare", str(tmp_path / name)))).stdout.strip()
    rows = [line.split(" | ")[:3] for line in table.splitlines()[2:]]
    assert rows == [["| pooled", "with", "frozen features (raw)"], ["| time-only", "with", "time only"],
                    ["| z", "with", "frozen features (standardised)"]]


@pytest.mark.parametrize(
    ("args", "message"),
    [(["--set", "data.frames=3"], "data.frames: unknown config key"),
     (["--set", "loss.gama=1"], "objective vava: unknown option(s) gama"),
     (["--objective", "tcc2"], "--objective: unknown objective 'tcc2'"),
     (["--config", "nope"], "--config: nope is neither a file nor a preset"),
     (["--set", "steps"], "--set: 'steps' is not KEY=VALUE")],
)
def test_train_rejects_bad_config(toy_features: Path, tmp_path: Path, args: list[str], message: str) -> None:
    result = cli("train", "--features", str(toy_features), "--out", str(tmp_path / "r"), "--quiet", *args)
    assert result.exit_code == 1 and message in result.output and "Traceback" not in result.output


def test_evaluate_compare_and_align_commands(toy_features: Path, tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    tiny = ["--set", "model.conv_channels=8", "--set", "model.fc_channels=8", "--set", "data.frames_per_video=6"]
    assert cli("train", "--features", str(toy_features), "--out", str(run_dir), "--steps", "2", "--quiet",
               *tiny).exit_code == 0
    missing = cli("evaluate", "--run", str(run_dir))
    assert missing.exit_code == 2 and "embeddings.h5 not found; run `vava embed" in missing.output
    assert cli("embed", "--run", str(run_dir), "--quiet").exit_code == 0
    result = cli("evaluate", "--run", str(run_dir), "--k", "1,2", "--fractions", "0.5,1.0")
    assert result.exit_code == 0, result.output
    assert "Classification 0.5" in result.stdout and "AP@2" in result.stdout
    assert (run_dir / "report.json").is_file() and (run_dir / "report.md").is_file()
    # the toy set has one val video per action: videos of two actions are never aligned
    assert {p.name for p in (run_dir / "plots").iterdir()} == {"tsne.png", "loss.png"}
    assert "skipped plot alignment.png: no action has two val videos to align" in result.stderr
    report = json.loads((run_dir / "report.json").read_text())
    assert report["options"]["ks"] == [1, 2] and 0.0 <= report["results"]["classification"]["1.0"] <= 1.0

    baseline = tmp_path / "pooled"
    assert cli("embed", "--run", str(baseline), "--features", str(toy_features), "--identity", "--quiet").exit_code == 0
    assert cli("evaluate", "--run", str(baseline), "--no-plots", "--k", "1,2").exit_code == 0
    table = cli("evaluate", "--compare", str(run_dir), "--compare", str(baseline))
    assert table.exit_code == 0 and "| run |" in table.stdout.lower() and "| pooled |" in table.stdout

    bad = cli("evaluate", "--run", str(run_dir), "--kendall-stride", "0")
    assert bad.exit_code == 2 and "Invalid value for --kendall-stride: must be at least 1" in bad.output
    no_frames = cli("align", "--run", str(run_dir), "toy0", "toy1", "--out", str(tmp_path / "a.mp4"))
    assert no_frames.exit_code == 1 and "Traceback" not in no_frames.output
    assert "video 'toy0': cannot read the dataset the features came from" in no_frames.output


def test_data_fixture_then_info(tmp_path: Path) -> None:
    out = tmp_path / "fx"
    result = cli("data", "fixture", "--dataset", "folder", str(out))
    assert result.exit_code == 0 and result.output.strip().splitlines()[-1] == str(out)
    result = cli("data", "info", "--root", str(out))
    lines = result.output.splitlines()
    assert result.exit_code == 0 and lines[0].split() == ["action", "train", "val", "test", "frames", "phases"]
    total = lines[-1].split()
    assert total[:4] == ["total", "6", "2", "0"]
    manifest = [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]
    assert int(total[4]) == sum(len(entry["labels"]) for entry in manifest)
    again = cli("data", "fixture", "--dataset", "folder", str(out))
    assert again.exit_code == 1 and f"Error: OUT_DIR: {out} is not empty" in again.output
    bad = cli("data", "info", "--root", str(out), "--dataset-option", "x=1")
    assert bad.exit_code == 1 and "Error: --dataset-option: folder has no option 'x'" in bad.output
    bad = cli("data", "info", "--root", str(out), "--dataset-option", "x")
    assert bad.exit_code == 2 and "'x' is not KEY=VALUE" in bad.output


def test_data_info_write_split_for_any_dataset(tmp_path: Path) -> None:
    out = tmp_path / "fx"
    assert cli("data", "fixture", "--dataset", "folder", str(out)).exit_code == 0
    split = tmp_path / "split.json"
    result = cli("data", "info", "--root", str(out), "--write-split", str(split))
    assert result.exit_code == 0 and f"split written to {split}" in result.stderr
    manifest = [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]
    assert json.loads(split.read_text()) == {name: [e["id"] for e in manifest if e["split"] == name]
                                             for name in ("train", "val", "test")}
    link = tmp_path / "link.json"
    link.symlink_to(tmp_path / "target.json")
    refused = cli("data", "info", "--root", str(out), "--write-split", str(link))
    assert refused.exit_code == 1 and f"Error: {link}: is a symlink" in refused.output
    assert "action" not in refused.output and not (tmp_path / "target.json").exists()  # refused before reading


def test_eval_every_best_checkpoint_and_checkpoint_outputs(toy_features: Path, tmp_path: Path) -> None:
    import csv
    import math
    import os
    import shutil

    import h5py

    run_dir = tmp_path / "run"
    tiny = ["--set", "model.conv_channels=8", "--set", "model.fc_channels=8", "--set", "data.frames_per_video=6",
            "--set", "checkpoint_every=5"]
    trained = cli("train", "--features", str(toy_features), "--out", str(run_dir), "--steps", "5", "--eval-every", "2",
                  "--quiet", *tiny)
    assert trained.exit_code == 0, trained.output
    with open(run_dir / "eval_log.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [int(r["step"]) for r in rows] == [2, 4, 5] and list(rows[0])[:4] == ["step", "classification", "progress",
                                                                                "kendall"]
    for row in rows:  # accuracy in [0, 1]; R^2 at most 1; tau needs 2 val videos of an action (the toy set has 1)
        assert 0 <= float(row["classification"]) <= 1 and float(row["progress"]) <= 1
        assert math.isnan(float(row["kendall"]))
    accuracies = [float(r["classification"]) for r in rows]
    best = int(rows[accuracies.index(max(accuracies))]["step"])
    folder = run_dir / "checkpoints"
    assert os.path.samefile(folder / "best.pt", folder / f"step_{best:07d}.pt")
    assert f"best classification {max(accuracies):.6g} at step {best}: {folder / 'best.pt'}" in trained.stderr

    probes = ["--tasks", "classification,progress,kendall", "--fractions", "1.0", "--no-plots"]
    assert cli("embed", "--run", str(run_dir), "--quiet").exit_code == 0
    assert cli("evaluate", "--run", str(run_dir), *probes).exit_code == 0
    outside = tmp_path / "kept" / "early.pt"
    outside.parent.mkdir()
    shutil.copy(folder / "step_0000002.pt", outside)
    for choice, tag, step in [("best", "best", best), ("2", "step2", 2), (str(outside), "early", 2),
                              (str(folder / "step_0000005.pt"), "step_0000005", 5)]:
        embedded = cli("embed", "--run", str(run_dir), "--checkpoint", choice, "--quiet")
        assert embedded.exit_code == 0, embedded.output
        assert embedded.stdout.strip().splitlines()[-1] == str(run_dir / f"embeddings-{tag}.h5")
        with h5py.File(run_dir / f"embeddings-{tag}.h5") as handle:
            assert handle.attrs["step"] == step
        evaluated = cli("evaluate", "--run", str(run_dir), "--checkpoint", choice, *probes)
        assert evaluated.exit_code == 0, evaluated.output
        assert f"report: {run_dir / f'report-{tag}.md'} and report-{tag}.json" in evaluated.stdout
        report = json.loads((run_dir / f"report-{tag}.json").read_text())
        # the scores logged during training are those embed + evaluate give for the step's checkpoint
        row = next(r for r in rows if int(r["step"]) == step)
        assert report["results"]["classification"]["1.0"] == pytest.approx(float(row["classification"]), abs=1e-9)
        assert report["results"]["progress"] == pytest.approx(float(row["progress"]), abs=1e-9)
    last = json.loads((run_dir / "report.json").read_text())  # the last checkpoint's report is left alone
    assert last["attrs"]["step"] == 5 and last["file"] == str(run_dir / "embeddings.h5")

    saved = ", ".join(str(int(p.stem[5:])) for p in sorted(folder.glob("step_*.pt")))
    unknown = cli("embed", "--run", str(run_dir), "--checkpoint", "3")
    assert unknown.exit_code == 1
    assert f"Error: --checkpoint: no checkpoint of step 3 in {folder} (saved steps: {saved})" in unknown.output
    other = tmp_path / "other"
    assert cli("train", "--features", str(toy_features), "--out", str(other), "--steps", "2", "--seed", "1", "--quiet",
               *tiny).exit_code == 0
    no_best = cli("embed", "--run", str(other), "--checkpoint", "best")
    assert no_best.exit_code == 1 and (f"Error: --checkpoint: best: {other / 'checkpoints'} has no best.pt; train with "
                                       "--eval-every N") in no_best.output
    foreign = cli("embed", "--run", str(run_dir), "--checkpoint", str(other / "checkpoints" / "last.pt"))
    assert foreign.exit_code == 1 and (f"Error: --checkpoint: {other / 'checkpoints' / 'last.pt'} is not a checkpoint "
                                       f"of run {run_dir} (its config differs in seed)") in foreign.output
    not_embedded = cli("evaluate", "--run", str(other), "--checkpoint", "best")
    assert not_embedded.exit_code == 2
    assert f"embeddings-best.h5 not found; run `vava embed --run {other} --checkpoint best` first" in \
        not_embedded.output
    bad_metric = cli("train", "--features", str(toy_features), "--out", str(tmp_path / "r"), "--eval-every", "1",
                     "--eval-metric", "loss", "--quiet")
    assert bad_metric.exit_code == 1
    assert "Error: --eval-metric: 'loss' is not one of classification, progress, kendall" in bad_metric.output


@pytest.mark.parametrize(("args", "option", "printer"), [
    (["train", "--features", "", "--out", "run"], "--features", "vava extract"),
    (["sweep", "--features", " ", "--out", "runs"], "--features", "vava extract"),
    (["embed", "--run", ""], "--run", "vava train"),
    (["evaluate", "--run", ""], "--run", "vava train"),
    (["align", "--run", "", "a", "b", "--out", "x.mp4"], "--run", "vava train"),
    (["align", "--run", "run", "--features", "", "a", "b", "--out", "x.mp4"], "--features", "vava extract"),
])
def test_an_empty_path_names_the_command_that_failed_to_print_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                   args: list[str], option: str, printer: str) -> None:
    monkeypatch.chdir(tmp_path)  # `""` used to be read as the current folder
    result = cli(*args)
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert (f"Invalid value for '{option}': empty; it is meant to be the path `{printer}` prints last, so that "
            "command probably failed or printed nothing (see its error above)") in result.output
    assert list(tmp_path.iterdir()) == []


REPRODUCE = ["reproduce", "--objectives", "vava", "--steps", "2", "--weights", "random", "--image-size", "32",
             "--set", "model.conv_channels=8", "--set", "model.fc_channels=8", "--set", "data.frames_per_video=4",
             "--set", "data.batch_pairs=1"]


def test_reproduce_passes_evaluation_options_on_and_checks_them_first(tmp_path: Path) -> None:
    from vava.pipeline.datasets import DATASETS

    DATASETS["folder"].fixture(tmp_path / "data")
    where = ["--root", str(tmp_path / "data"), "--out", str(tmp_path / "out")]
    bad = cli(*REPRODUCE, *where, "--kendall-stride", "0")
    assert bad.exit_code == 2 and "Invalid value for --kendall-stride: must be at least 1" in bad.output
    assert not (tmp_path / "out").exists()
    done = cli(*REPRODUCE, *where, "--kendall-stride", "3", "--k", "5")
    assert done.exit_code == 0, done.output
    report = json.loads((tmp_path / "out" / "runs" / "vava" / "report.json").read_text())
    assert report["options"]["kendall_stride"] == 3 and report["options"]["ks"] == [5]
    assert report["options"]["retrieval_stride"] == 1  # not given: evaluate's default
    assert done.stderr.splitlines()[0] == "plan: folder, 8 videos, one joint model: 1 run (vava)"
    assert "  evaluation: kendall_stride=3, ks=[5]" in done.stderr.splitlines()


def test_version() -> None:
    from importlib.metadata import version

    result = cli("--version")
    assert result.exit_code == 0 and result.output == f"vava {version('vava-align')}\n"


# -- options checked before anything is written (--fps, synth's numbers and sizes); --allow-outside-root ---


def test_extract_cli_refuses_outside_paths_until_allowed(tmp_path: Path) -> None:
    root = tmp_path / "data"
    root.mkdir()
    entries = make_folder_dataset(tmp_path / "elsewhere", [8])
    write_manifest(root, [{**entries[0], "path": "../elsewhere/videos/v0.mp4"}])
    cache = tmp_path / "cache"
    refused = cli(*EXTRACT, "--root", str(root), "--cache", str(cache))
    assert refused.exit_code == 1 and "leads outside the dataset root" in refused.output
    assert "Traceback" not in refused.output and not cache.exists()
    allowed = cli(*EXTRACT, "--root", str(root), "--cache", str(cache), "--allow-outside-root")
    assert allowed.exit_code == 0, allowed.output
    assert "1 videos: 1 extracted (8 frames" in allowed.stderr
    # align finds a cached video's frames where its (allowed) extraction read them
    feature_set = FeatureSet.open(allowed.stdout.strip().splitlines()[-1])
    assert feature_set.video("v0").source_path == str((tmp_path / "elsewhere" / "videos" / "v0.mp4").resolve())


@pytest.mark.parametrize("fps", ["nan", "inf", "-1", "0"])
def test_extract_fps_must_be_positive_and_finite(tiny_dataset: Path, tmp_path: Path, fps: str) -> None:
    result = cli(*EXTRACT, "--root", str(tiny_dataset), "--cache", str(tmp_path / "c"), "--fps", fps)
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert f"Invalid value for --fps: must be a positive finite number, got {float(fps)}" in result.output
    assert not (tmp_path / "c").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [(["--fps", "1e12"], "Invalid value for --fps: must be a number from 1 to 1000, got 1000000000000.0"),
     (["--fps", "nan"], "Invalid value for --fps: must be a number from 1 to 1000, got nan"),
     (["--val-fraction", "nan"], "Invalid value for --val-fraction: must be in (0, 1), got nan"),
     (["--speed", "inf"], "Invalid value for --speed: strength must be a number in [0, 1], got inf"),
     (["--frames", "16:100000000"], "Invalid value for --frames/--size: a video of up to 100000000 frames of 64x64 "
                                    "pixels needs about 21362.3 GiB to render, over the 4 GiB limit"),
     (["--size", "100000", "--frames", "16:16"], "Invalid value for --frames/--size: a video of up to 16 frames of "
                                                 "100000x100000 pixels needs about 8344.7 GiB to render")],
)
def test_data_synth_refuses_meaningless_numbers_and_huge_sizes(tmp_path: Path, args: list[str], message: str) -> None:
    result = cli("data", "synth", str(tmp_path / "s"), *args)
    assert result.exit_code == 2 and message in result.output and "Traceback" not in result.output
    assert not (tmp_path / "s").exists()


# -- cache commands on broken metadata and stray folders, and on sets written before checksums -----


def test_cache_commands_report_broken_entries_and_go_on(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    good = write_toy_features(cache / "good000000000000")
    bad = write_toy_features(cache / "bad0000000000000", lengths=(5, 6))
    (bad / "zarr.json").write_text("{not json")
    (cache / "stray").mkdir()
    (good / "videos" / "toy2" / "zarr.json").write_text("{not json")
    (good / "videos" / "leftover" / "features").mkdir(parents=True)

    listing = cli("cache", "ls", str(cache))
    assert listing.exit_code == 0, listing.output
    assert re.search(rf"skipped: {bad}: unreadable zarr.json \(JSONDecodeError: .*\)", listing.stderr)
    assert f"skipped: {cache / 'stray'}: not a feature set (no zarr.json" in listing.stderr
    assert re.search(rf"^{good}  .* 5/6  ", listing.stdout, re.M) and listing.stdout.startswith("path  ")

    info = cli("cache", "info", str(good))
    assert info.exit_code == 0, info.output
    assert "videos:      5 complete, 2 incomplete" in info.stdout
    assert re.search(r"unreadable:  toy2: unreadable metadata \(JSONDecodeError: .*\)", info.stderr)
    assert "unreadable:  leftover: stray folder (no zarr.json)" in info.stderr

    verified = cli("cache", "verify", str(good))
    assert verified.exit_code == 1
    assert re.search(r"damaged: toy2: unreadable metadata \(JSONDecodeError", verified.stderr)
    assert "damaged: leftover: stray folder (no zarr.json)" in verified.stderr
    assert "5 complete videos checked, 2 damaged, 0 incomplete" in verified.stdout

    broken = cli("cache", "info", str(bad))
    assert broken.exit_code == 1 and re.fullmatch(r"Error: \S+: unreadable zarr.json \(JSONDecodeError: .*\)",
                                                  single_line(broken.output))


def test_verify_says_which_videos_predate_checksums(toy_features: Path) -> None:
    for video in zarr.open_group(str(toy_features / "videos"), mode="r+").group_values():
        del video.attrs["files"]  # as written by format 1
    result = cli("cache", "verify", str(toy_features))
    assert result.exit_code == 0, result.output
    assert ("6 videos were written before checksums (cache format 1): only their shape and values were checked; "
            "extract again into a new feature set to protect them") in result.stderr
    assert "6 complete videos checked, 0 damaged, 0 incomplete" in result.stdout


# -- config errors in one line; sweep's --results --------------------------------------------------


def test_cli_refuses_nan_learning_rate_in_one_line(toy_features: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["train", "--features", str(toy_features), "--out", str(tmp_path / "run"),
                                       "--set", "optim.lr=.nan"])
    assert result.exit_code == 1 and result.output.strip().splitlines() == [
        "Error: optim.lr: expected a finite number, got nan"]
    assert not (tmp_path / "run").exists()


def test_sweep_cli_results_are_markdown_and_written_atomically(toy_features: Path, tmp_path: Path) -> None:
    plan = plan_file(tmp_path, "runs: {pooled: {identity: true}}")
    args = ["sweep", "--features", str(toy_features), "--plan", str(plan), "--out", str(tmp_path / "runs")]
    refused = CliRunner().invoke(main, [*args, "--results", str(tmp_path / "tables.txt")])
    assert refused.exit_code == 2 and "--results" in refused.output and "does not end in .md" in refused.output
    assert not (tmp_path / "runs").exists()

    outside = tmp_path / "outside.md"
    outside.write_text("keep me")
    (tmp_path / "runs").mkdir()
    (tmp_path / "runs" / "results.md").symlink_to(outside)
    done = CliRunner().invoke(main, [*args, "--results", str(tmp_path / "tables.md")])
    assert done.exit_code == 0, done.output
    assert outside.read_text() == "keep me" and not (tmp_path / "runs" / "results.md").is_symlink()
    written = (tmp_path / "runs" / "results.md").read_text()
    assert "| pooled |" in written and (tmp_path / "tables.md").read_text() == written

    nan = CliRunner().invoke(main, [*args[:-1], str(tmp_path / "nan"), "--set", "optim.lr=.nan"])
    assert nan.exit_code == 1 and nan.output.strip() == "Error: optim.lr: expected a finite number, got nan"
    assert not (tmp_path / "nan").exists()


# -- data fixture into a folder that cannot be made; a --dataset-option given twice ----------------


def test_a_fixture_folder_that_cannot_be_made_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("mine")
    out = tmp_path / "file" / "sub"
    result = cli("data", "fixture", "--dataset", "pouring", out)
    one_line_error(result, rf"^Error: OUT_DIR: cannot write the fixture into {out} \(Not a directory\)$")
    assert (tmp_path / "file").read_text() == "mine"


def test_a_dataset_option_given_twice_is_refused_not_overridden(tmp_path: Path) -> None:
    result = cli("data", "info", "--dataset", "penn_action", "--root", tmp_path,
                 "--dataset-option", "actions=squat", "--dataset-option", "actions=situp")
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert result.stderr.strip().splitlines()[-1] == (
        "Error: Invalid value for '--dataset-option': actions is given twice ('squat' and 'situp')")
