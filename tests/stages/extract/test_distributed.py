"""`vava extract` under torchrun: two gloo processes give the single-process feature set, and a rank killed
mid-run leaves a set that the same command completes (real processes)."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import make_folder_dataset
from vava.cache.inspect import verify
from vava.cache.store import FeatureSet
from vava.pipeline.datasets.folder import load_folder
from vava.stages.extract.shards import plan_shards

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(sys.platform != "linux", reason="finds the rank processes through /proc")]

LENGTHS = [24, 30, 20, 27, 22, 33, 26, 21, 29, 25]
# The workers run one OpenMP thread each (what torchrun sets for several processes); the reference does too,
# so that the only difference between them is the split of the videos between processes.
ONE_THREAD = {"OMP_NUM_THREADS": "1"}


def extract_args(root: Path, cache: Path) -> list[str]:
    return ["extract", "--root", str(root), "--cache", str(cache), "--weights", "random", "--image-size", "64",
            "--batch-size", "8", "--workers", "1", "--quiet"]


def torchrun(*args: str) -> list[str]:
    """The documented command: torchrun running the `vava` console script of this environment in 2 processes."""
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2", "--no-python",
            "--", str(Path(sys.executable).parent / "vava"), *args]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("distributed") / "data"
    make_folder_dataset(root, LENGTHS, split_val=3)
    return root


@pytest.fixture(scope="module")
def reference(dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> FeatureSet:
    cache = tmp_path_factory.mktemp("reference")
    done = subprocess.run([sys.executable, "-m", "vava.pipeline.cli", *extract_args(dataset, cache)],
                          capture_output=True, text=True, check=True, env={**os.environ, **ONE_THREAD})
    return FeatureSet.open(done.stdout.strip().splitlines()[-1])


def assert_identical(result: FeatureSet, reference: FeatureSet) -> None:
    assert [v.id for v in result.videos(include_incomplete=True)] == [v.id for v in reference.videos()]
    for video in reference.videos():
        assert np.array_equal(result.read(video.id), reference.read(video.id))
        assert np.array_equal(result.labels(video.id), reference.labels(video.id))
        assert np.array_equal(result.frame_index(video.id), reference.frame_index(video.id))
        assert result.video(video.id) == reference.video(video.id)
    assert result.attrs["inputs"] == reference.attrs["inputs"]
    assert verify(result).ok


def test_two_processes_write_the_single_process_feature_set(dataset: Path, reference: FeatureSet,
                                                            tmp_path: Path) -> None:
    done = subprocess.run(torchrun(*extract_args(dataset, tmp_path)), capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines() == [str(tmp_path / reference.fingerprint)]  # rank 0 alone prints
    summaries = [line for line in done.stderr.splitlines() if " videos: " in line]
    assert len(summaries) == 1 and summaries[0].startswith(f"{len(LENGTHS)} videos: {len(LENGTHS)} extracted "
                                                            f"({sum(LENGTHS)} frames"), done.stderr
    assert_identical(FeatureSet.open(tmp_path / reference.fingerprint), reference)


def test_a_failed_video_is_reported_once_by_rank_0(dataset: Path, reference: FeatureSet, tmp_path: Path) -> None:
    root = tmp_path / "data"
    shutil.copytree(dataset, root)
    (root / "videos" / "broken.mp4").write_bytes(b"not a video")
    with (root / "manifest.jsonl").open("a") as manifest:
        manifest.write(json.dumps({"id": "broken", "path": "videos/broken.mp4", "split": "train", "action": "slide"})
                       + "\n")
    done = subprocess.run(torchrun(*extract_args(root, tmp_path / "cache")), capture_output=True, text=True,
                          check=False)
    assert done.returncode == 1, done.stderr
    path = Path(done.stdout.strip())  # the one line, from rank 0
    failures = [line for line in done.stderr.splitlines() if line.startswith("failed: ")]
    assert len(failures) == 1 and "'broken'" in failures[0], done.stderr
    summaries = [line for line in done.stderr.splitlines() if " videos: " in line]
    assert len(summaries) == 1 and summaries[0].startswith(f"{len(LENGTHS) + 1} videos: {len(LENGTHS)} extracted "
                                                            f"({sum(LENGTHS)} frames"), done.stderr
    assert summaries[0].endswith(", 1 failed")
    result = FeatureSet.open(path)
    assert [v.id for v in result.videos(include_incomplete=True)] == [v.id for v in reference.videos()]
    for video in reference.videos():
        assert np.array_equal(result.read(video.id), reference.read(video.id))


def rank_process(marker: str, rank: int) -> int | None:
    """The pid of the worker of `rank` among the processes whose environment holds `marker`."""
    for entry in Path("/proc").iterdir():
        try:
            environ = (entry / "environ").read_bytes().split(b"\0")
        except (OSError, ValueError):  # gone meanwhile, or another user's
            continue
        if marker.encode() in environ and f"RANK={rank}".encode() in environ:  # whole entries, not LOCAL_RANK
            return int(entry.name)
    return None


def test_a_killed_rank_leaves_its_videos_to_the_rerun(dataset: Path, reference: FeatureSet, tmp_path: Path) -> None:
    shard = plan_shards(load_folder(dataset), 2, None)[1]
    marker = f"VAVA_TEST_RUN={uuid.uuid4().hex}"
    env = {**os.environ, marker.split("=")[0]: marker.split("=")[1]}
    job = subprocess.Popen(torchrun(*extract_args(dataset, tmp_path)), env=env, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True)
    path = tmp_path / reference.fingerprint
    deadline = time.monotonic() + 120
    # the set counts as made once its zarr.json is written (its folder exists a moment before)
    while not ((path / "zarr.json").is_file() and any(FeatureSet.open(path).is_complete(i) for i in shard)):
        assert job.poll() is None and time.monotonic() < deadline, "rank 1 finished no video"
        time.sleep(0.02)
    os.kill(rank_process(marker, 1), signal.SIGKILL)
    _, stderr = job.communicate(timeout=120)
    assert job.returncode != 0, stderr
    left = [i for i in shard if not FeatureSet.open(path).is_complete(i)]
    assert left, "rank 1 finished its share before it was killed; the test proves nothing"

    rerun = subprocess.run(torchrun(*extract_args(dataset, tmp_path)), capture_output=True, text=True, check=False)
    assert rerun.returncode == 0, rerun.stderr
    assert rerun.stdout.strip().splitlines()[-1] == str(path)
    assert_identical(FeatureSet.open(path), reference)
