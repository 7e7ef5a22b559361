"""The dataset-adapter registry's contract: every registered adapter names a missing root in one line and
reads a tiny dataset of its format into `VideoRecord`s (timm-style: one test parametrised over the
registry). A new adapter adds a writer of a tiny dataset in its format to `SAMPLES`."""
from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import make_folder_dataset
from vava.core.errors import VavaError
from vava.core.records import VideoRecord
from vava.pipeline.datasets import ADAPTERS, load_dataset


def folder_sample(root: Path) -> list[str]:
    return [entry["id"] for entry in make_folder_dataset(root, [6, 8, 10])]


# adapter name -> writes a tiny dataset of that format at the root and returns its video ids
SAMPLES: dict[str, Callable[[Path], list[str]]] = {"folder": folder_sample}


@pytest.mark.parametrize("name", sorted(ADAPTERS))
def test_every_adapter_names_a_missing_root_in_one_line(name: str, tmp_path: Path) -> None:
    missing = tmp_path / "no" / "such" / "dataset"
    with pytest.raises(VavaError, match=re.escape(str(missing))) as caught:
        load_dataset(name, missing)
    assert "\n" not in str(caught.value)
    assert not missing.exists()


@pytest.mark.parametrize("name", sorted(ADAPTERS))
def test_every_adapter_reads_a_tiny_dataset_into_video_records(name: str, tmp_path: Path) -> None:
    assert name in SAMPLES, f"adapter {name!r} has no tiny sample dataset in SAMPLES"
    root = tmp_path / "data"
    ids = SAMPLES[name](root)
    records = load_dataset(name, root)
    assert [r.id for r in records] == ids
    assert all(isinstance(r, VideoRecord) for r in records)
    assert all(Path(r.path).is_file() and Path(r.path).resolve().is_relative_to(root.resolve()) for r in records)
    assert {r.split for r in records} == {"train", "val"}
