"""Shared by the adapter tests."""
from __future__ import annotations

from pathlib import Path

from vava.core.records import VideoRecord
from vava.pipeline.datasets import load_dataset


def records_by_id(dataset: str, root: Path, **options: str) -> dict[str, VideoRecord]:
    """The records `dataset` reads at `root` with `options`, keyed by video id (in reading order)."""
    return {r.id: r for r in load_dataset(dataset, root, options=options)}
