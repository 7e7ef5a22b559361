"""Dataset adapters: each turns a dataset on disk into a list of `VideoRecord`s."""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from pipeline.datasets.folder import load_folder
from pipeline.datasets.record import VideoRecord
from pipeline.errors import VavaError

DatasetAdapter = Callable[[Path], list[VideoRecord]]

ADAPTERS: dict[str, DatasetAdapter] = {"folder": load_folder}


def load_dataset(name: str, root: str | Path) -> list[VideoRecord]:
    """Load the manifest of dataset `name` stored at `root`."""
    if name not in ADAPTERS:
        raise VavaError(f"unknown dataset {name!r} (known: {', '.join(sorted(ADAPTERS))})")
    return ADAPTERS[name](Path(root))


__all__ = ["ADAPTERS", "VideoRecord", "load_dataset"]
