"""The dataset-adapter registry's contract (timm-style: one test parametrised over the registry): every
adapter names a missing root in one line, reads the tiny copy its own `fixture` writes in the real
on-disk format into `VideoRecord`s, refuses options it does not declare and declares the options it takes
as a checked dataclass, read from their `--dataset-option` texts."""
from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from vava.core.config import CONFIG_DIR
from vava.core.errors import ConfigError, VavaError
from vava.core.records import VideoRecord
from vava.core.validation import rule_of
from vava.pipeline.datasets import DATASETS, DatasetOptions, load_dataset, resolve_options
from vava.pipeline.datasets.coin import CoinOptions
from vava.pipeline.datasets.pouring import PouringOptions
from vava.stages.evaluate.options import EvalOptions


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


@pytest.mark.parametrize("name", sorted(DATASETS))
def test_every_adapter_declares_typed_checked_options_with_help_and_its_protocol(name: str) -> None:
    spec = DATASETS[name]
    defaults = spec.options()  # the defaults pass their own rules
    assert dataclasses.is_dataclass(defaults) and isinstance(defaults, DatasetOptions)
    for item in dataclasses.fields(spec.options):
        assert rule_of(item).holds(item.default), item.name
    assert [key for key, _, _ in spec.option_help()] == [item.name for item in dataclasses.fields(spec.options)]
    assert all(text for _, text, _ in spec.option_help())
    assert spec.preset is None or (CONFIG_DIR / f"{spec.preset}.yaml").is_file()
    EvalOptions(**spec.evaluation)  # the papers' evaluation options are valid `vava evaluate` options


def test_option_texts_are_read_as_their_fields_types() -> None:
    coin = resolve_options("coin", {"seed": "3", "tasks": "largest"})
    assert (coin.seed, coin.tasks, coin.missing, coin.split_file) == (3, "largest", "error", None)
    assert resolve_options("penn_action", {"fps": "12.5"}).fps == 12.5
    assert resolve_options("pouring", {"fps": "25"}).fps == 25.0 and resolve_options("pouring", None).layout == "auto"


@pytest.mark.parametrize(("name", "given", "text"), [
    ("coin", {"seed": "x"}, "--dataset-option seed=x: not an integer"),
    ("coin", {"seed": "1.5"}, "--dataset-option seed=1.5: not an integer"),
    ("coin", {"seed": "-1"}, "--dataset-option seed=-1: must be >= 0"),
    ("coin", {"missing": "maybe"}, "--dataset-option missing=maybe: not one of error, skip"),
    ("pouring", {"layout": "zip"}, "--dataset-option layout=zip: not one of auto, tfrecord, carl"),
    ("ikea_asm", {"fps": "inf"}, "--dataset-option fps=inf: must be a positive number of frames per second"),
    ("folder", {"x": "1"}, "--dataset-option: folder has no option 'x' (its options: none)"),
])
def test_a_bad_option_is_a_config_error_naming_it_as_given(name: str, given: dict[str, str], text: str) -> None:
    with pytest.raises(ConfigError) as caught:
        resolve_options(name, given)
    assert str(caught.value) == text and caught.value.key == next(iter(given))


def test_options_built_in_python_are_checked_by_the_same_rules() -> None:
    with pytest.raises(ConfigError, match=r"^fps must be a positive number of frames per second$"):
        PouringOptions(fps=0.0)
    with pytest.raises(ConfigError, match=r"^seed must be >= 0$"):
        CoinOptions(seed=-1)
    assert CoinOptions(seed=4).seed == 4
