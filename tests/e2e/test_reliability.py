"""Extraction survives SIGKILL and runs concurrently with itself (real processes)."""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import make_folder_dataset
from vava.cache.inspect import verify
from vava.cache.store import FeatureSet, open_feature_sets

VIDEOS = 14
LENGTHS = [20 + (i % 4) for i in range(VIDEOS)]
SUMMARY = re.compile(r"(\d+) videos: (\d+) extracted .*?, (\d+) already cached, (\d+) done by another process, (\d+) failed")

pytestmark = pytest.mark.slow


def extract_command(root: Path, cache: Path) -> list[str]:
    return [sys.executable, "-m", "vava.pipeline.cli", "extract", "--root", str(root), "--cache", str(cache),
            "--weights", "random", "--image-size", "64", "--batch-size", "4", "--workers", "1", "--quiet"]


def counts(stderr: str) -> dict[str, int]:
    match = SUMMARY.search(stderr)
    assert match, stderr
    total, extracted, cached, others, failed = map(int, match.groups())
    return {"total": total, "extracted": extracted, "cached": cached, "others": others, "failed": failed}


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("reliability") / "data"
    make_folder_dataset(root, LENGTHS)
    return root


@pytest.fixture(scope="module")
def reference(dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> FeatureSet:
    """One uninterrupted, single-process run to compare against."""
    cache = tmp_path_factory.mktemp("reference")
    done = subprocess.run(extract_command(dataset, cache), capture_output=True, text=True, check=True)
    return FeatureSet.open(done.stdout.strip().splitlines()[-1])


def assert_same_features(result: FeatureSet, reference: FeatureSet) -> None:
    assert [v.id for v in result.videos()] == [v.id for v in reference.videos()]
    assert [v.id for v in result.videos(include_incomplete=True)] == [v.id for v in reference.videos()]
    for video in reference.videos():
        got, want = result.read(video.id).astype(np.float32), reference.read(video.id).astype(np.float32)
        assert np.allclose(got, want, rtol=1e-2, atol=1e-3 * np.abs(want).max())
        assert np.array_equal(result.labels(video.id), reference.labels(video.id))
    assert verify(result).ok


def test_killed_run_resumes_with_only_the_missing_videos(dataset: Path, reference: FeatureSet, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    process = subprocess.Popen(extract_command(dataset, cache), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    complete = 0
    while time.monotonic() < deadline and process.poll() is None:
        sets = open_feature_sets(cache) if cache.exists() else []
        complete = len(sets[0].videos()) if sets else 0
        if complete >= 2:
            os.kill(process.pid, signal.SIGKILL)
            break
        time.sleep(0.02)
    process.wait()
    assert process.returncode == -signal.SIGKILL, "extraction ended before it could be killed mid-run"

    killed = open_feature_sets(cache)[0]
    complete_ids = [v.id for v in killed.videos()]
    assert 2 <= len(complete_ids) < VIDEOS
    assert verify(killed).damaged == {}  # whatever is marked complete is whole

    resumed = subprocess.run(extract_command(dataset, cache), capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr
    summary = counts(resumed.stderr)
    assert summary["cached"] == len(complete_ids) and summary["extracted"] == VIDEOS - len(complete_ids)
    assert_same_features(FeatureSet.open(resumed.stdout.strip().splitlines()[-1]), reference)


def test_two_concurrent_runs_share_the_work(dataset: Path, reference: FeatureSet, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    processes = [subprocess.Popen(extract_command(dataset, cache), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  text=True) for _ in range(2)]
    outputs = [p.communicate(timeout=300) for p in processes]
    assert [p.returncode for p in processes] == [0, 0], [err for _, err in outputs]
    paths = {out.strip().splitlines()[-1] for out, _ in outputs}
    assert len(paths) == 1
    summaries = [counts(err) for _, err in outputs]
    assert sum(s["extracted"] for s in summaries) == VIDEOS  # every video extracted exactly once
    assert all(s["extracted"] + s["cached"] + s["others"] == VIDEOS for s in summaries)
    assert_same_features(FeatureSet.open(paths.pop()), reference)
