"""Dataset adapters: each turns a dataset on disk, in its own format, into a list of `VideoRecord`s.

`DATASETS` maps a name (`vava extract --dataset NAME`) to its `Dataset`, which each adapter module
declares beside its reader (`DATASET`): the reader, its options (`--dataset-option KEY=VALUE`, a
frozen dataclass), the writer of a tiny copy in the real on-disk format (`vava data fixture`, the
same one the tests read) and the papers' training preset and evaluation options for it.
"""
from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from vava.core.errors import VavaError
from vava.core.records import VideoRecord
from vava.pipeline.datasets import coin, folder, ikea_asm, penn_action, pouring
from vava.pipeline.datasets.adapter import Dataset, DatasetOptions, as_given, option

DATASETS: dict[str, Dataset] = {
    adapter.DATASET.name: adapter.DATASET for adapter in (folder, penn_action, pouring, ikea_asm, coin)
}


def dataset(name: str) -> Dataset:
    """The registered adapter `name`; a one-line error listing the known ones otherwise."""
    if name not in DATASETS:
        raise VavaError(f"unknown dataset {name!r} (known: {', '.join(sorted(DATASETS))})")
    return DATASETS[name]


def resolve_options(name: str, given: Mapping[str, str] | None) -> DatasetOptions:
    """The options of dataset `name`: the `given` `--dataset-option` texts (read and checked) and the defaults."""
    return dataset(name).parse_options(given or {})


def load_dataset(name: str, root: str | Path, *, allow_outside_root: bool = False,
                 options: Mapping[str, str] | None = None) -> list[VideoRecord]:
    """The videos of dataset `name` stored at `root`, read with the `--dataset-option` texts `options`."""
    given = dict(options or {})
    resolved = resolve_options(name, given)
    root = Path(root)
    if not root.is_dir():
        raise VavaError(f"dataset root {root} is not a directory")
    with as_given(given):  # an option the reader refuses is named as given, like one its rule refuses
        return dataset(name).load(root, resolved, allow_outside_root=allow_outside_root)


__all__ = ["DATASETS", "Dataset", "DatasetOptions", "VideoRecord", "dataset", "load_dataset", "option",
           "resolve_options"]
