"""Dataset adapters: each turns a dataset on disk into a list of `VideoRecord`s."""
from __future__ import annotations

from pathlib import Path
from typing import Protocol

from vava.core.errors import VavaError
from vava.core.records import VideoRecord
from vava.pipeline.datasets.folder import load_folder


class DatasetAdapter(Protocol):
    """Reads the manifest of a dataset at `root`; refuses video paths outside it unless allowed."""

    def __call__(self, root: Path, *, allow_outside_root: bool = False) -> list[VideoRecord]: ...


ADAPTERS: dict[str, DatasetAdapter] = {"folder": load_folder}


def load_dataset(name: str, root: str | Path, *, allow_outside_root: bool = False) -> list[VideoRecord]:
    """Load the manifest of dataset `name` stored at `root` (see `DatasetAdapter`)."""
    if name not in ADAPTERS:
        raise VavaError(f"unknown dataset {name!r} (known: {', '.join(sorted(ADAPTERS))})")
    return ADAPTERS[name](Path(root), allow_outside_root=allow_outside_root)


__all__ = ["ADAPTERS", "VideoRecord", "load_dataset"]
