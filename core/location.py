"""Where the feature cache lives: a local folder (`Path`) or object storage named by an fsspec URL (`RemotePath`).

`RemotePath` offers the few `Path` operations the cache uses (`/`, `name`, `parent`, `exists`, `is_file`,
`is_dir`, `iterdir`, `resolve`, `is_symlink`) plus `sizes` and `remove_tree`, so most code handles both
alike. Object storage holds no symlinks, FIFOs or devices, so the local checks against those have nothing to
check there. The file system comes from fsspec (`s3://` needs the `s3fs` package, the `s3` extra), which
takes its endpoint and credentials from the usual environment variables (AWS_ACCESS_KEY_ID,
AWS_SECRET_ACCESS_KEY, AWS_ENDPOINT_URL, ...) and any s3fs option from FSSPEC_S3_<OPTION>.
"""
from __future__ import annotations

import contextlib
import functools
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from vava.core.errors import VavaError

_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
# Listings are never cached: another process (or zarr's own file system object) writes meanwhile.
STORAGE_OPTIONS = {"use_listings_cache": False}


def is_url(value: object) -> bool:
    """Whether `value` names object storage (`s3://bucket/prefix`) rather than a local path (`file://` is local)."""
    return isinstance(value, str) and bool(_URL.match(value)) and not value.startswith("file://")


def as_location(value: str | Path | RemotePath) -> Path | RemotePath:
    """A local `Path`, or a `RemotePath` for a URL (a `RemotePath` is returned as it is)."""
    if isinstance(value, (Path, RemotePath)):
        return value
    if is_url(value):
        return RemotePath(value)
    return Path(value.removeprefix("file://") if isinstance(value, str) else value)


class RemotePath:
    """A file or folder (key prefix) in object storage; every failure to reach it is a one-line `VavaError`."""

    def __init__(self, url: str):
        protocol, _, key = url.partition("://")
        key = key.strip("/")
        if not key:
            raise VavaError(f"{url}: name a bucket (and a prefix), e.g. {protocol}://bucket/cache")
        if any(part in ("", ".", "..") for part in key.split("/")):  # object stores keep them, or drop them, or fail
            raise VavaError(f"{url}: a URL with an empty, '.' or '..' part; write the path without it")
        self.protocol, self.key = protocol.lower(), key

    def __str__(self) -> str:
        return f"{self.protocol}://{self.key}"

    def __repr__(self) -> str:
        return f"RemotePath({str(self)!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, RemotePath) and str(self) == str(other)

    def __hash__(self) -> int:
        return hash(str(self))

    def __truediv__(self, name: str) -> RemotePath:
        return RemotePath(f"{self}/{name}")

    def __reduce__(self) -> tuple[Any, ...]:  # pickled as its URL: the file system is made again where it is used
        return RemotePath, (str(self),)

    @property
    def name(self) -> str:
        return self.key.rpartition("/")[2]

    @property
    def parent(self) -> RemotePath:
        head = self.key.rpartition("/")[0]
        return RemotePath(f"{self.protocol}://{head}") if head else self

    @functools.cached_property
    def fs(self) -> Any:
        """The (synchronous) fsspec file system."""
        with self.errors("open the object storage"):
            import fsspec

            return fsspec.filesystem(self.protocol, **STORAGE_OPTIONS)

    @contextlib.contextmanager
    def errors(self, doing: str) -> Iterator[None]:
        """Turn any failure within the block (unreachable endpoint, missing credentials or bucket, ...) into a
        one-line `VavaError` naming this URL and what was being done."""
        try:
            yield
        except VavaError:
            raise
        except ImportError as err:
            if self.protocol in ("s3", "s3a"):
                raise VavaError(f"{self}: {self.protocol}:// URLs need {err.name or 's3fs'} "
                                "(pip install 'vava-align[s3]')") from None
            raise VavaError(f"{self}: {self.protocol}:// URLs need an fsspec driver ({err})") from None
        except Exception as err:
            raise VavaError(f"{self}: cannot {doing} ({storage_reason(err)})") from None

    def _kind(self) -> str | None:
        """'file', 'directory' or None when absent."""
        if kind := self.__dict__.get("_known_kind"):
            return kind
        with self.errors("read the object storage"):
            try:
                return self.fs.info(self.key)["type"]
            except FileNotFoundError:
                return None

    def exists(self) -> bool:
        return self._kind() is not None

    def is_file(self) -> bool:
        return self._kind() == "file"

    def is_dir(self) -> bool:
        return self._kind() == "directory"

    def is_symlink(self) -> bool:
        return False

    def resolve(self) -> RemotePath:
        return self

    def iterdir(self) -> Iterator[RemotePath]:
        """The files and folders right below this folder (one listing; their kinds are known without asking)."""
        with self.errors("list the object storage"):
            entries = self.fs.ls(self.key, detail=True)
        for entry in entries:
            name = entry["name"].rstrip("/").rpartition("/")[2]
            if entry["name"].rstrip("/") == self.key or not name:
                continue
            child = self / name
            child.__dict__["_known_kind"] = entry["type"]
            yield child

    def sizes(self) -> dict[str, int]:
        """Size of every file below this folder, by its path relative to it (one recursive listing)."""
        with self.errors("list the object storage"):
            found = self.fs.find(self.key, detail=True)
        prefix = self.key + "/"
        return {name[len(prefix):]: int(entry["size"]) for name, entry in sorted(found.items())
                if entry.get("type") == "file" and name.startswith(prefix) and not name.endswith("/")}

    def remove_tree(self) -> None:
        """Delete every file below this folder."""
        with self.errors("delete from the object storage"), contextlib.suppress(FileNotFoundError):
            self.fs.rm(self.key, recursive=True)


def storage_reason(err: BaseException) -> str:
    """One line saying why an object-storage call failed (an unreachable endpoint named once, not per object)."""
    kwargs = getattr(err, "kwargs", None)  # botocore's EndpointConnectionError keeps the endpoint there
    endpoint = kwargs.get("endpoint_url") if type(err).__name__ == "EndpointConnectionError" and kwargs else None
    if endpoint:
        scheme, _, rest = endpoint.partition("://")
        return f"no answer from the endpoint {scheme}://{rest.split('/')[0]}: is the server up and the URL right?"
    text = " ".join(str(err).split()) or "no details"
    return f"{type(err).__name__}: {text}"


def unreachable(err: BaseException) -> bool:
    """Whether `err` says that the storage could not be reached or refused the request (rather than that the
    data read back is wrong): an OS or time-out error other than a missing file, or one of the client's own."""
    if isinstance(err, (OSError, TimeoutError)):
        return not isinstance(err, FileNotFoundError)
    return type(err).__module__.split(".")[0] in ("botocore", "aiobotocore", "aiohttp", "s3fs", "fsspec")
