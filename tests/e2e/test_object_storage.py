"""The feature cache in object storage, through the CLI, against a real S3-compatible server (SeaweedFS): extract
into `s3://`, `cache ls/info/verify`, train and embed from it; the server stopped mid-write; the README's recipe."""
from __future__ import annotations

import csv
import io
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import make_folder_dataset
from tests.helpers import EXTRACT, cli, single_line
from tests.s3_server import SeaweedServer, make_bucket, start_server
from tests.stages.train.test_distributed import one_process, same_curve, train_with_torchrun
from vava.cache.store import FeatureSet, VideoWriter
from vava.core.embeddings_file import load_embeddings
from vava.core.location import RemotePath
from vava.core.staged_run import STAGING_ENV, StagedRun, staging_folder

TINY = ["--steps", "2", "--quiet", "--set", "model.conv_channels=8", "--set", "model.fc_channels=8",
        "--set", "data.frames_per_video=6", "--set", "data.batch_pairs=2"]
SUMMARY = re.compile(r"(\d+) videos: (\d+) extracted .*?, (\d+) already cached, .*?, (\d+) failed")

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def extract(root: Path, cache: str | Path, *options: str) -> tuple[int, str, str]:
    """(exit code, last stdout line, stderr) of `vava extract` (resnet18, 64 px, one decode worker)."""
    result = cli(*EXTRACT, "--backbone", "resnet18", "--batch-size", "4", "--workers", "1", "--root", root,
                 "--cache", cache, *options)
    assert "Traceback" not in result.output, result.output
    return result.exit_code, (result.stdout.strip().splitlines() or [""])[-1], result.stderr


def assert_same_features(remote: str, local: str) -> None:
    remote_set, local_set = FeatureSet.open(remote), FeatureSet.open(local)
    assert [v.id for v in remote_set.videos()] == [v.id for v in local_set.videos()] == [f"v{i}" for i in range(5)]
    for video in local_set.videos():
        np.testing.assert_array_equal(remote_set.read(video.id), local_set.read(video.id))
        np.testing.assert_array_equal(remote_set.labels(video.id), local_set.labels(video.id))


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """Five 20-frame videos (v0 in val) and their features extracted into a local cache."""
    folder = tmp_path_factory.mktemp("object-storage")
    make_folder_dataset(folder / "data", [20] * 5)
    code, local, stderr = extract(folder / "data", folder / "cache")
    assert code == 0, stderr
    return folder / "data", local


def test_extract_into_object_storage_then_inspect_train_and_embed(dataset, s3_prefix: str,
                                                                          tmp_path: Path) -> None:
    root, local = dataset
    code, remote, stderr = extract(root, f"{s3_prefix}/cache")
    assert code == 0 and SUMMARY.search(stderr).groups() == ("5", "5", "0", "0"), stderr
    assert remote == f"{s3_prefix}/cache/{Path(local).name}"  # the same fingerprint, printed as a URL
    assert_same_features(remote, local)

    again = extract(root, f"{s3_prefix}/cache/")
    assert again[0] == 0 and again[1] == remote and SUMMARY.search(again[2]).groups() == ("5", "0", "5", "0")

    listing = cli("cache", "ls", f"{s3_prefix}/cache")
    assert listing.exit_code == 0 and listing.stderr == ""
    row = listing.stdout.splitlines()[1].split()
    local_row = cli("cache", "ls", Path(local).parent).stdout.splitlines()[1].split()
    assert row[0] == remote and row[1:] == local_row[1:] and row[4] == "5/5", listing.stdout
    info = json.loads(cli("cache", "info", remote, "--json").stdout)
    local_info = json.loads(cli("cache", "info", local, "--json").stdout)
    assert info["path"] == remote and info["videos_complete"] == 5 and info["frames"] == 100
    assert info["bytes_on_disk"] == local_info["bytes_on_disk"] > 0
    verified = cli("cache", "verify", remote)
    assert verified.exit_code == 0 and verified.stdout == "5 complete videos checked, 0 damaged, 0 incomplete\n"

    # the same training on the local and the remote copy: the same embeddings
    embeddings = {}
    for name, features in (("local", local), ("remote", remote)):
        trained = cli("train", "--features", features, "--out", tmp_path / name, *TINY)
        assert trained.exit_code == 0, trained.output
        run = Path(trained.stdout.strip().splitlines()[-1])
        embedded = cli("embed", "--run", run, "--quiet")  # reads the features the run recorded: a URL for one
        assert embedded.exit_code == 0, embedded.output
        videos = load_embeddings(embedded.stdout.strip().splitlines()[-1]).videos
        embeddings[name] = {video.id: video.embeddings for video in videos}
    assert embeddings["remote"].keys() == embeddings["local"].keys() and embeddings["remote"]
    for key, value in embeddings["local"].items():
        np.testing.assert_array_equal(embeddings["remote"][key], value)

    # train's zarr data path: DataLoader worker processes each open the set in the bucket themselves
    losses = [cli("train", "--features", remote, "--out", tmp_path / f"zarr{workers}", *TINY, "--set", "data.path=zarr",
                  "--set", f"data.workers={workers}") for workers in (0, 2)]
    assert [result.exit_code for result in losses] == [0, 0], losses[1].output
    assert "(zarr data path)" in losses[1].stderr
    assert losses[0].stderr.rsplit("last loss ", 1)[1] == losses[1].stderr.rsplit("last loss ", 1)[1]


@pytest.fixture
def own_server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[SeaweedServer]:
    """A server of this test's own, to stop and start again."""
    server = start_server(tmp_path / "seaweedfs")
    make_bucket(server, monkeypatch)
    yield server
    server.stop()


def test_the_server_stopped_mid_write_gives_a_clear_error_and_a_resumable_cache(
        dataset, own_server: SeaweedServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    root, local = dataset
    cache = "s3://vava-test/cache"
    finish = VideoWriter.finish

    def finish_then_stop_the_server(self: VideoWriter, *args: object, **kwargs: object) -> None:
        finish(self, *args, **kwargs)
        own_server.stop()  # after the first video is complete

    monkeypatch.setattr(VideoWriter, "finish", finish_then_stop_the_server)
    code, printed, stderr = extract(root, cache)
    monkeypatch.setattr(VideoWriter, "finish", finish)
    assert code == 1 and SUMMARY.search(stderr).groups() == ("5", "1", "0", "4"), stderr
    failures = [line for line in stderr.splitlines() if line.startswith("failed: ")]
    unreachable = f"no answer from the endpoint {own_server.endpoint}: is the server up and the URL right?"
    assert len(failures) == 4 and all(unreachable in line for line in failures), stderr
    down = cli("cache", "verify", printed)
    assert down.exit_code == 1 and single_line(down.stderr) == f"Error: {printed}/zarr.json: cannot read the object " \
        f"storage ({unreachable})"

    own_server.start()
    make_bucket(own_server, monkeypatch)  # waits until it takes writes again
    verified = cli("cache", "verify", printed)  # what was complete is whole; nothing of the others was written
    assert verified.exit_code == 0 and verified.stdout == "1 complete videos checked, 0 damaged, 0 incomplete\n"
    refused = cli("train", "--features", printed, "--out", tmp_path / "run", *TINY)
    assert refused.exit_code == 1 and "only 1 of 5 videos are extracted" in single_line(refused.stderr)
    code, resumed, stderr = extract(root, cache)
    assert code == 0 and resumed == printed and SUMMARY.search(stderr).groups() == ("5", "4", "1", "0"), stderr
    assert_same_features(resumed, local)
    assert cli("cache", "verify", resumed).exit_code == 0


def test_a_run_folder_in_the_bucket_survives_the_server_stopping_mid_training(
        dataset, own_server: SeaweedServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    _, local = dataset
    monkeypatch.setenv(STAGING_ENV, str(tmp_path / "staging"))
    run = "s3://vava-test/runs/stopped"
    push = StagedRun.push

    def push_then_stop_the_server(self: StagedRun) -> None:
        push(self)
        own_server.stop()  # after the first checkpoint is uploaded

    monkeypatch.setattr(StagedRun, "push", push_then_stop_the_server)
    steps = ["--steps", "6", "--set", "checkpoint_every=2", "--set", "log_every=2"]
    failed = cli("train", "--features", local, "--out", run, *TINY, *steps)
    monkeypatch.setattr(StagedRun, "push", push)
    unreachable = f"no answer from the endpoint {own_server.endpoint}: is the server up and the URL right?"
    assert failed.exit_code == 1 and "Traceback" not in failed.output
    error = single_line(failed.stderr.replace("estimate: ", "", 1).split("\n", 1)[1])  # after train's estimate
    assert error == f"Error: {run}: cannot upload checkpoints/last.pt ({unreachable}) (not uploaded: the run is kept " \
                    f"in {staging_folder(RemotePath(run))})"

    own_server.start()
    make_bucket(own_server, monkeypatch)
    resumed = cli("train", "--features", local, "--out", run, *TINY, *steps, "--resume")
    assert resumed.exit_code == 0 and "from step 4 to 6" in resumed.stderr, resumed.output
    fs = RemotePath(run).fs
    assert sorted(fs.ls("vava-test/runs/stopped/checkpoints")) == [
        f"vava-test/runs/stopped/checkpoints/{name}" for name in
        ("last.pt", "step_0000002.pt", "step_0000004.pt", "step_0000006.pt")]
    log = fs.cat_file("vava-test/runs/stopped/train_log.csv").decode().splitlines()
    assert [row.split(",")[0] for row in log] == ["step", "2", "4", "6"] and not fs.exists(f"{run}/.vava.lease")


def test_a_two_process_training_into_a_run_url_follows_the_single_process_curve(
        toy_features: Path, s3_prefix: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Both ranks pull into one staging folder, rank 0 alone holds the lease and uploads; resumed on another
    machine (another staging folder), the run continues the single-process curve."""
    run = f"{s3_prefix}/runs/ddp"
    monkeypatch.setenv(STAGING_ENV, str(tmp_path / "machine-a"))
    train_with_torchrun(toy_features, run, 3)
    monkeypatch.setenv(STAGING_ENV, str(tmp_path / "machine-b"))
    train_with_torchrun(toy_features, run, 6, "--resume")
    log = RemotePath(run).fs.cat_file(f"{RemotePath(run).key}/train_log.csv").decode()
    got = [(int(row["step"]), float(row["loss"])) for row in csv.DictReader(io.StringIO(log))]
    same_curve(got, one_process(toy_features, tmp_path / "local", 6))
    assert not RemotePath(run).fs.exists(f"{RemotePath(run).key}/.vava.lease")


def readme_recipe() -> str:
    text = (ROOT / "README.md").read_text()
    return re.search(r"```sh\n(.*?)```", text[text.index("### Object storage"):], flags=re.DOTALL).group(1)


@pytest.mark.skipif(shutil.which("bash") is None, reason="the recipe is for bash")
def test_the_readme_recipe_runs_as_pasted(s3_server: SeaweedServer, monkeypatch: pytest.MonkeyPatch,
                                          tmp_path: Path) -> None:
    make_bucket(s3_server, monkeypatch, bucket="my-bucket")  # the recipe's bucket; the environment points at it
    script = readme_recipe()
    assert script.count("--config cpu") == 1 and script.count('--weights "$WEIGHTS"') == 1
    script = script.replace("--config cpu", "--config cpu --steps 2").replace(  # short, and small frames
        '--weights "$WEIGHTS"', '--weights "$WEIGHTS" --image-size 64')
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"  # `vava` on the PATH, as after activate
    done = subprocess.run(["bash", "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=600,
                          env={**os.environ, "PATH": path, "WEIGHTS": "random",
                               STAGING_ENV: str(tmp_path / "staging")}, check=False)
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
    features = next(line for line in done.stdout.splitlines() if line.startswith("s3://"))  # what `echo` printed
    assert re.fullmatch(r"s3://my-bucket/vava-cache/[0-9a-f]{16}", features), done.stdout
    assert f"{features}  resnet50/layer3.2  64px" in done.stdout and "12/12" in done.stdout  # cache ls
    assert "12 complete videos checked, 0 damaged, 0 incomplete" in done.stdout  # cache verify
    run = "s3://my-bucket/runs/s3-demo"
    assert f"\n{run}\n" in done.stdout and f"report: {run}/report.md and report.json" in done.stdout
    bucket = RemotePath(run).fs
    assert all(bucket.exists(f"my-bucket/runs/s3-demo/{name}") for name in
               ("checkpoints/last.pt", "embeddings.h5", "report.json", "plots/tsne.png"))
    assert not bucket.exists("my-bucket/runs/s3-demo/.vava.lease") and not (tmp_path / "runs").exists()
