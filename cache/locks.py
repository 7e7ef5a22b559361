"""Advisory file locks, so several `extract` processes can share one cache.

`flock` locks vanish with the process that holds them, even on SIGKILL, so a killed run never
leaves a stale lock behind. They live beside the feature sets, outside the zarr hierarchy.

Object storage has no such locks: there every lock is a `NoLock`, and the writers rely on the
lock-free protocol of `vava.cache.store` instead (README, "Object storage").

Every process that writes into a feature set holds its set lock shared for as long as it writes;
`vava cache rm` takes it exclusively, so it never deletes a set another process is writing into.
"""
from __future__ import annotations

import fcntl
import os
from pathlib import Path

from vava.core.errors import VavaError
from vava.core.location import RemotePath
from vava.core.records import stored_name


class FileLock:
    """An exclusive (or shared) lock on one lock file; usable as a (blocking) context manager."""

    def __init__(self, path: Path, shared: bool = False):
        self.path = path
        self.shared = shared
        self._fd: int | None = None

    def acquire(self, blocking: bool) -> bool:
        """Take the lock; without blocking, return False when another process holds it."""
        flags = (fcntl.LOCK_SH if self.shared else fcntl.LOCK_EX) | (0 if blocking else fcntl.LOCK_NB)
        while True:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o644)  # never through a symlink
            except OSError as err:  # a read-only cache, or a file where a lock folder belongs
                raise VavaError(f"{self.path}: cannot take the cache lock ({err.strerror or err})") from None
            try:
                fcntl.flock(fd, flags)
            except BlockingIOError:
                os.close(fd)
                return False
            if _is_current(fd, self.path):
                self._fd = fd
                return True
            # The lock file was deleted (`cache rm`) while we waited for it: lock its successor.
            os.close(fd)

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> FileLock:
        self.acquire(blocking=True)
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


class NoLock(FileLock):
    """The lock of a feature set in object storage: always taken at once, since nothing there can hold one."""

    def acquire(self, blocking: bool) -> bool:
        return True

    def release(self) -> None:
        pass


def _is_current(fd: int, path: Path) -> bool:
    """Whether the open file `fd` is still the file at `path`."""
    try:
        return os.path.samestat(os.fstat(fd), os.stat(path))
    except FileNotFoundError:
        return False


def lock_folder(feature_set_path: Path | RemotePath) -> Path | RemotePath:
    """Where the locks of a feature set live."""
    return feature_set_path.parent / ".locks" / feature_set_path.name


def _lock(feature_set_path: Path | RemotePath, name: str, shared: bool = False) -> FileLock:
    kind = NoLock if isinstance(feature_set_path, RemotePath) else FileLock
    return kind(lock_folder(feature_set_path) / name, shared=shared)


def video_lock(feature_set_path: Path | RemotePath, video_id: str) -> FileLock:
    """Held while one video of a feature set is being written (in a folder of their own, so that no video
    id, `set` included, names the set's lock)."""
    return _lock(feature_set_path, f"videos/{stored_name(video_id)}.lock")


def creation_lock(feature_set_path: Path | RemotePath) -> FileLock:
    """Held while a feature set's group is created."""
    return _lock(feature_set_path, "create.lock")


def set_lock(feature_set_path: Path | RemotePath, shared: bool) -> FileLock:
    """Held shared by every process writing into a feature set, exclusively by `cache rm`."""
    return _lock(feature_set_path, "set.lock", shared=shared)
