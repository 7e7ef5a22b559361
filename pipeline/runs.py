"""Run folders: refusing unsafe ones, and one vava process writing into a run at a time.

A run folder is written by `vava train` (config.yaml, run.json, checkpoints/, train_log.csv), then
`vava embed` (embeddings.h5) and `vava evaluate` (report.json, report.md, plots/). Each of them holds
the folder's lock (`LOCK_NAME`, an advisory file lock) while it writes, so a second command on the
same folder fails at once instead of mixing its files with the first one's.
"""
from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from filelock import FileLock, Timeout

from pipeline.errors import VavaError
from pipeline.files import is_inside

LOCK_NAME = ".vava.lock"
# Subfolders the stages write into; a symlink there would carry their files out of the run.
SUBFOLDERS = ("checkpoints", "plots", "tensorboard")


def check_run_folder(run_dir: str | Path, option: str) -> Path:
    """`run_dir` if it is usable as a run folder (it may not exist yet); `VavaError` otherwise.

    Refused: a symlink in place of the folder, something that is not a folder, and a subfolder the
    stages write into that is a symlink leading out of the run or is not a folder.
    """
    run_dir = Path(run_dir)
    if run_dir.is_symlink():
        raise VavaError(f"{option}: {run_dir} is a symlink (to {run_dir.readlink()}); give the real folder")
    if run_dir.exists() and not run_dir.is_dir():
        raise VavaError(f"{option}: {run_dir} is not a folder")
    for name in SUBFOLDERS:
        sub = run_dir / name
        if sub.is_symlink() and not is_inside(sub, run_dir):
            raise VavaError(f"{option}: {sub} is a symlink to {sub.readlink()}, outside the run folder; remove it")
        if sub.exists() and not sub.is_dir():
            raise VavaError(f"{option}: {sub} is a file, where the run keeps a folder; move it away")
    return run_dir


@contextlib.contextmanager
def locked_run(run_dir: str | Path, option: str, *, create: bool = True) -> Iterator[Path]:
    """Check `run_dir`, create it, and hold its lock for the block; fail at once if another process holds it.

    Without `create`, a missing folder is neither created nor locked: the stage then fails on its
    missing inputs, with its own message.
    """
    run_dir = check_run_folder(run_dir, option)
    if not create and not run_dir.is_dir():
        yield run_dir
        return
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise VavaError(f"{option}: cannot create {run_dir} ({err.strerror or err})") from None
    try:
        held = FileLock(run_dir / LOCK_NAME).acquire(blocking=False)
    except Timeout:
        raise VavaError(f"{option}: {run_dir} is in use by another vava process (train, embed or evaluate); "
                        "wait for it to finish") from None
    except OSError as err:
        raise VavaError(f"{option}: cannot lock {run_dir} ({err.strerror or err})") from None
    with held:
        yield run_dir
