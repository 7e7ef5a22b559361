"""Split files: the video ids of each split as JSON, `{"train": [...], "val": [...], "test": [...]}`.

`vava data info --write-split FILE` writes the split a dataset adapter produced, so it can be published
and read back (e.g. COIN's `split_file` option) to reproduce exactly the same videos per split.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

from vava.core.errors import VavaError
from vava.core.files import atomic_write
from vava.core.records import SPLITS, VideoRecord
from vava.pipeline.datasets.annotation_files import read_json


def check_new_file(path: str | Path) -> Path:
    """`path` if a split file can be created there: nothing (not even a symlink) in the way, folder present."""
    path = Path(path)
    if path.is_symlink():
        raise VavaError(f"{path}: is a symlink; give a new file to write the split to")
    if path.exists():
        raise VavaError(f"{path}: already exists; give a new file to write the split to")
    if not path.parent.is_dir():
        raise VavaError(f"{path}: the folder {path.parent} does not exist")
    return path


def write_split(records: list[VideoRecord], path: str | Path) -> Path:
    """Write the ids of `records` per split (in their order) to a new file `path`; never overwrite one."""
    path = check_new_file(path)
    ids = {split: [r.id for r in records if r.split == split] for split in SPLITS}
    return atomic_write(path, json.dumps(ids, indent=1) + "\n")


def read_split(path: str | Path) -> dict[str, str]:
    """The split of each video id listed in the split file `path` (keys: some of train, val, test)."""
    path = Path(os.fspath(path))
    document = read_json(path, "the split file given as split_file")
    if not isinstance(document, dict):
        raise VavaError(f"{path}: expected an object {{\"train\": [ids], \"val\": [ids]}}")
    unknown = sorted(set(document) - set(SPLITS))
    if unknown:
        raise VavaError(f"{path}: unknown split {unknown[0]!r} (use {', '.join(SPLITS)})")
    splits: dict[str, str] = {}
    for split, ids in document.items():
        if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
            raise VavaError(f"{path}: {split!r} must be a list of video ids (strings)")
        for video_id in ids:
            if video_id in splits:
                raise VavaError(f"{path}: video {video_id!r} is listed twice ({splits[video_id]} and {split})")
            splits[video_id] = split
    return splits
