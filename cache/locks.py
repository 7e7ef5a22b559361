"""Per-video advisory locks, so several `extract` processes can share one cache.

`flock` locks vanish with the process that holds them, even on SIGKILL, so a killed run never
leaves a stale lock behind.
"""
from __future__ import annotations

import fcntl
import os
from pathlib import Path


class VideoLock:
    """An exclusive lock on one video of one feature set."""

    def __init__(self, path: Path):
        self.path = path
        self._fd: int | None = None

    def acquire(self, blocking: bool) -> bool:
        """Take the lock; without blocking, return False when another process holds it."""
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


def lock_folder(feature_set_path: Path) -> Path:
    """Where the locks of a feature set live (beside it, outside the zarr hierarchy)."""
    return feature_set_path.parent / ".locks" / feature_set_path.name


def video_lock(feature_set_path: Path, video_id: str) -> VideoLock:
    folder = lock_folder(feature_set_path)
    folder.mkdir(parents=True, exist_ok=True)
    return VideoLock(folder / f"{video_id}.lock")
