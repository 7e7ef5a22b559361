"""Advisory file locks, so several `extract` processes can share one cache.

`flock` locks vanish with the process that holds them, even on SIGKILL, so a killed run never
leaves a stale lock behind. They live beside the feature sets, outside the zarr hierarchy.
"""
from __future__ import annotations

import fcntl
import os
from pathlib import Path


class FileLock:
    """An exclusive lock on one lock file; usable as a (blocking) context manager."""

    def __init__(self, path: Path):
        self.path = path
        self._fd: int | None = None

    def acquire(self, blocking: bool) -> bool:
        """Take the lock; without blocking, return False when another process holds it."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
        except BlockingIOError:
            os.close(fd)
            return False
        self._fd = fd
        return True

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


def lock_folder(feature_set_path: Path) -> Path:
    """Where the locks of a feature set live."""
    return feature_set_path.parent / ".locks" / feature_set_path.name


def video_lock(feature_set_path: Path, video_id: str) -> FileLock:
    """Held while one video of a feature set is being written."""
    return FileLock(lock_folder(feature_set_path) / f"{video_id}.lock")


def creation_lock(feature_set_path: Path) -> FileLock:
    """Held while a feature set's group is created."""
    return FileLock(lock_folder(feature_set_path) / "create.lock")
