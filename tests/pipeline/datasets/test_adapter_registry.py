"""The dataset-adapter registry's contract (timm-style: one test parametrised over the registry): every
adapter names a missing root in one line, reads the tiny copy its own `fixture` writes in the real
on-disk format into `VideoRecord`s, and refuses options it does not declare."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from vava.core.errors import VavaError
from vava.core.records import VideoRecord
from vava.pipeline.datasets import DATASETS, load_dataset


@pytest.mark.parametrize("name", sorted(DATASETS))
def test_every_adapter_names_a_missing_root_in_one_line(name: str, tmp_path: Path) -> None:
    missing = tmp_path / "no" / "such" / "dataset"
    with pytest.raises(VavaError, match=re.escape(str(missing))) as caught:
        load_dataset(name, missing)
    assert "\n" not in str(caught.value)
    assert not missing.exists()


@pytest.mark.parametrize("name", sorted(DATASETS))
def test_every_adapter_reads_its_fixture_into_video_records(name: str, tmp_path: Path) -> None:
    root = tmp_path / "data"
    DATASETS[name].fixture(root)
    records = load_dataset(name, root)
    assert records and all(isinstance(r, VideoRecord) for r in records)
    assert len({r.id for r in records}) == len(records)
    assert all(r.path.exists() and r.path.resolve().is_relative_to(root.resolve()) for r in records)
    assert {"train", "val"} <= {r.split for r in records}


@pytest.mark.parametrize("name", sorted(DATASETS))
def test_every_adapter_refuses_an_unknown_option(name: str, tmp_path: Path) -> None:
    with pytest.raises(VavaError, match=rf"^--dataset-option: {name} has no option 'no_such_option'"):
        load_dataset(name, tmp_path, options={"no_such_option": "1"})
