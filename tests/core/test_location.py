"""Local paths and object-storage URLs (`vava.core.location`); no server needed."""
from __future__ import annotations

import pickle
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import cli, single_line
from tests.s3_server import drop_cached_file_systems
from vava.cache.locks import FileLock, NoLock, set_lock, video_lock
from vava.cache.store import FeatureSet
from vava.core.errors import VavaError
from vava.core.location import RemotePath, as_location, is_url, storage_reason, unreachable


@pytest.mark.parametrize(("value", "url"), [("s3://bucket/cache", True), ("gs://b/x", True), ("S3://B", True),
                                            ("file:///tmp/cache", False), ("cache", False), ("/tmp/s3:/x", False),
                                            ("s3:/bucket", False), (Path("s3://x"), False)])
def test_urls_are_told_from_local_paths(value: object, url: bool) -> None:
    assert is_url(value) is url


def test_as_location_keeps_urls_and_makes_paths() -> None:
    assert as_location("cache/x") == Path("cache/x") and as_location("file:///tmp/c") == Path("/tmp/c")
    remote = as_location("s3://bucket/prefix/cache/")
    assert isinstance(remote, RemotePath) and str(remote) == "s3://bucket/prefix/cache"
    assert as_location(remote) is remote


def test_a_remote_path_joins_and_splits_like_a_path() -> None:
    cache = RemotePath("s3://bucket/prefix")
    feature_set = cache / "0123abcd"
    assert str(feature_set) == "s3://bucket/prefix/0123abcd" and feature_set.name == "0123abcd"
    assert feature_set.parent == cache and hash(feature_set.parent) == hash(cache)
    assert str(feature_set / "videos" / "v0") == "s3://bucket/prefix/0123abcd/videos/v0"
    assert not feature_set.is_symlink() and feature_set.resolve() is feature_set
    assert pickle.loads(pickle.dumps(feature_set)) == feature_set  # as DataLoader workers receive it


def test_a_url_without_a_bucket_is_refused() -> None:
    with pytest.raises(VavaError, match=r"^s3://: name a bucket \(and a prefix\), e.g. s3://bucket/cache$"):
        RemotePath("s3://")


def test_object_storage_takes_no_locks() -> None:
    remote, local = RemotePath("s3://bucket/cache/set"), Path("cache/set")
    assert type(video_lock(remote, "v0")) is NoLock and type(set_lock(remote, shared=False)) is NoLock
    assert type(video_lock(local, "v0")) is FileLock
    lock = video_lock(remote, "v0")
    assert lock.acquire(blocking=False) and lock.acquire(blocking=False)  # never held by anyone


def test_failures_that_mean_the_storage_is_unreachable() -> None:
    assert unreachable(ConnectionRefusedError()) and unreachable(TimeoutError()) and unreachable(PermissionError())
    assert not unreachable(FileNotFoundError()) and not unreachable(ValueError("checksum mismatch"))
    assert storage_reason(ValueError("bad\n  value")) == "ValueError: bad value"


@pytest.fixture
def closed_endpoint(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """An endpoint nothing listens on, and credentials, in the environment."""
    pytest.importorskip("s3fs", reason="s3fs is not installed (pip install 'vava-align[s3]')")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        endpoint = f"http://127.0.0.1:{s.getsockname()[1]}"
    for name, value in {"AWS_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": "k", "AWS_SECRET_ACCESS_KEY": "s",
                        "AWS_DEFAULT_REGION": "us-east-1", "AWS_MAX_ATTEMPTS": "1"}.items():
        monkeypatch.setenv(name, value)
    drop_cached_file_systems()
    yield endpoint
    drop_cached_file_systems()  # its file systems point at nothing: no later test may get them


def test_an_unreachable_endpoint_is_one_line_naming_it(closed_endpoint: str) -> None:
    reason = f"no answer from the endpoint {closed_endpoint}: is the server up and the URL right?"
    with pytest.raises(VavaError) as caught:
        FeatureSet.open("s3://bucket/cache/0123abcd")
    assert str(caught.value) == f"s3://bucket/cache/0123abcd/zarr.json: cannot read the object storage ({reason})"
    result = cli("cache", "ls", "s3://bucket/cache")
    assert result.exit_code == 1
    assert single_line(result.stderr) == f"Error: s3://bucket/cache: cannot read the object storage ({reason})"


def test_a_run_folder_url_at_an_unreachable_endpoint_is_one_line(closed_endpoint: str, tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VAVA_STAGING", str(tmp_path / "staging"))
    result = cli("train", "--features", tmp_path, "--out", "s3://bucket/runs/a")
    reason = f"no answer from the endpoint {closed_endpoint}: is the server up and the URL right?"
    assert result.exit_code == 1
    assert single_line(result.stderr) == f"Error: s3://bucket/runs/a: cannot look at the run ({reason})"
    result = cli("reproduce", "--dataset", "folder", "--root", tmp_path, "--out", "s3://bucket/runs")
    assert result.exit_code == 2 and "s3://bucket/runs: a local path, please" in result.stderr
