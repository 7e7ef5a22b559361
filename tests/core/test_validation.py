"""One validation scheme: every config field declares a rule, one validator, one error carrying the key."""
from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from tests.helpers import cli
from vava.core.embedder import EmbedderConfig
from vava.core.errors import ConfigError, VavaError
from vava.core.validation import rule_of
from vava.pipeline.datasets.synthetic import SynthConfig, Variations
from vava.stages.evaluate.options import EvalOptions
from vava.stages.extract.run import ExtractOptions
from vava.stages.train.config import DataConfig, OptimConfig, TrainConfig, load_config
from vava.stages.train.objectives import OBJECTIVES, build_config

CONFIGS = [TrainConfig, DataConfig, OptimConfig, EmbedderConfig, ExtractOptions, SynthConfig, Variations,
           *(objective.config_class for objective in OBJECTIVES.values())]


def build(cls: type, **values: object) -> object:
    config = cls(**values)
    if cls is ExtractOptions:  # the CLI builds it, then validates it where bad options become flag errors
        config.validate()
    return config


@pytest.mark.parametrize("cls", CONFIGS, ids=lambda cls: cls.__name__)
def test_every_field_declares_a_rule_and_a_bad_value_names_its_key(cls: type) -> None:
    build(cls)  # the defaults pass
    for item in dataclasses.fields(cls):
        rule_of(item)  # a TypeError for a field without one
        with pytest.raises(ConfigError) as error:
            build(cls, **{item.name: object()})
        assert error.value.key == item.name and error.value.message in str(error.value)


@pytest.mark.parametrize(
    ("cls", "key", "value", "text"),
    [(DataConfig, "batch_pairs", 0, "batch_pairs must be at least 1, got 0"),
     (OptimConfig, "lr", 0.0, "lr must be positive, got 0.0"),
     (EmbedderConfig, "dropout", 1.0, r"dropout must be in \[0, 1\), got 1.0"),
     (TrainConfig, "seed", 2**64, r"seed must be in \[0, 2\*\*64\), got 18446744073709551616"),
     (OBJECTIVES["tcn"].config_class, "neg_radius", 3, "neg_radius must be an integer >= pos_radius, got 3"),
     (OBJECTIVES["vava"].config_class, "gamma", -1.0, r"gamma must be a finite number >= 0, got -1.0"),
     (ExtractOptions, "target_fps", 0.0, "target_fps: must be a positive finite number, got 0.0"),
     (ExtractOptions, "image_size", 100, "image_size: 100 is not a positive multiple of 16"),
     (SynthConfig, "frames", (40, 30), "frames: min 40 > max 30"),
     (SynthConfig, "frames/size", (16, 10**8), "frames/size: a video of up to 100000000 frames"),
     (Variations, "noise", 2.0, r"noise: strength must be a number in \[0, 1\], got 2.0")],
)
def test_range_errors_carry_the_key_and_keep_their_text(cls: type, key: str, value: object, text: str) -> None:
    with pytest.raises(ConfigError, match=f"^{text}") as error:
        build(cls, **{key.split("/")[0]: value})
    assert error.value.key == key and isinstance(error.value, VavaError) and isinstance(error.value, ValueError)


def test_nested_and_objective_keys_are_dotted_paths() -> None:
    with pytest.raises(ConfigError, match=r"^optim\.lr must be positive, got -1") as error:
        load_config(None, {"optim": {"lr": -1}})
    assert (error.value.key, error.value.message) == ("optim.lr", "must be positive, got -1.0")
    with pytest.raises(ConfigError, match="^model.dropout: expected a finite number, got nan") as error:
        load_config(None, {"model": {"dropout": float("nan")}})
    assert error.value.key == "model.dropout"
    with pytest.raises(ConfigError, match="^objective tcc: temperature must be a finite number > 0") as error:
        build_config("tcc", {"temperature": 0})
    assert error.value.key == "loss.temperature"
    with pytest.raises(ConfigError, match="^kendall_stride: must be at least 1, got 0") as error:
        EvalOptions(kendall_stride=0)
    assert error.value.key == "kendall_stride"


@pytest.mark.parametrize(
    ("args", "hint", "message"),
    [(["--image-size", "100"], "--image-size", "100 is not a positive multiple of 16"),
     (["--fps", "0"], "--fps", "must be a positive finite number, got 0.0"),  # key target_fps
     (["--batch-size", "0"], "--batch-size", "must be at least 1, got 0"),
     (["--backbone", "vgg"], "--backbone", "unknown backbone 'vgg'")],
)
def test_extract_config_errors_reach_their_flag(tiny_dataset: Path, tmp_path: Path, args: list[str], hint: str,
                                                message: str) -> None:
    result = cli("extract", "--weights", "random", "--root", tiny_dataset, "--cache", tmp_path / "c", *args)
    assert result.exit_code == 2 and f"Invalid value for {hint}: {message}" in result.output


@pytest.mark.parametrize(
    ("args", "hint", "message"),
    [(["--val-fraction", "1.5"], "--val-fraction", "must be in (0, 1), got 1.5"),
     (["--actions", "0"], "--actions", "must be >= 1, got 0"),
     (["--jitter", "-1"], "--jitter", "strength must be a number in [0, 1], got -1.0"),
     (["--size", "100000", "--frames", "16:16"], "--frames/--size", "a video of up to 16 frames")],
)
def test_synth_config_errors_reach_their_flag(tmp_path: Path, args: list[str], hint: str, message: str) -> None:
    result = cli("data", "synth", tmp_path / "s", *args)
    assert result.exit_code == 2 and f"Invalid value for {hint}: {message}" in result.output
    assert not (tmp_path / "s").exists()


def test_evaluate_config_errors_reach_their_flag(toy_features: Path, tmp_path: Path) -> None:
    run_dir = tmp_path / "pooled"
    missing = cli("evaluate", "--run", run_dir)
    assert missing.exit_code == 2 and "Invalid value for --run: " in missing.output
    assert cli("embed", "--run", run_dir, "--features", toy_features, "--identity", "--quiet").exit_code == 0
    for args, hint, message in [(["--k", "1,0"], "--k", "must be at least 1, got 0"),  # key ks
                                (["--fractions", "0"], "--fractions", "must be in (0, 1], got 0.0"),
                                (["--kendall-stride", "0"], "--kendall-stride", "must be at least 1, got 0")]:
        result = cli("evaluate", "--run", run_dir, "--no-plots", *args)
        assert result.exit_code == 2 and f"Invalid value for {hint}: {message}" in result.output, result.output


def test_config_errors_outside_option_commands_stay_one_line_exit_1(toy_features: Path, tmp_path: Path) -> None:
    result = cli("train", "--features", toy_features, "--out", tmp_path / "r", "--set", "data.batch_pairs=0")
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == ["Error: data.batch_pairs must be at least 1, got 0"]
