"""Training configs: presets, overrides and the messages for bad keys and values."""
from __future__ import annotations

import pytest

from vava.core.config import CONFIG_DIR, parse_overrides, to_dict
from vava.core.errors import VavaError
from vava.stages.train.config import TrainConfig, load_config


def test_defaults_are_table_8_and_9() -> None:
    config = TrainConfig()
    assert (config.optim.lr, config.optim.weight_decay, config.data.batch_pairs) == (1e-4, 1e-5, 4)
    assert (config.model.conv_channels, config.model.embedding_dim, config.model.context_stride) == (512, 128, 15)


@pytest.mark.parametrize(("preset", "frames"), [("pouring", 40), ("penn_action", 20), ("ikea_asm", 20), ("coin", 40)])
def test_dataset_presets(preset: str, frames: int) -> None:
    config = load_config(preset, {})
    assert config.data.frames_per_video == frames and config.optim.lr == 1e-4 and config.objective == "vava"


def test_every_preset_loads() -> None:
    names = sorted(p.stem for p in CONFIG_DIR.glob("*.yaml"))
    assert "synthetic" in names
    for name in names:
        load_config(name, {})


def test_overrides_are_typed_and_nested() -> None:
    values = parse_overrides(["data.frames_per_video=40", "loss.gamma=0.1", "optim.lr=1e-3", "amp=false"])
    config = load_config("synthetic", values)
    assert config.data.frames_per_video == 40 and config.loss == {"gamma": 0.1}
    assert config.optim.lr == 1e-3 and config.amp is False
    assert config.model.conv_channels == 64  # from the preset
    assert to_dict(config)["data"]["frames_per_video"] == 40


@pytest.mark.parametrize(
    ("override", "message"),
    [("data.frames=3", "data.frames: unknown config key (known here: actions, batch_pairs, frames_per_video, path, workers)"),
     ("steps=abc", "steps: expected int, got 'abc'"),
     ("data.batch_pairs=1.5", "data.batch_pairs: expected int, got 1.5"),
     ("model.dropout=2", "model.dropout must be in [0, 1), got 2.0"),
     ("data.frames_per_video=0", "data.frames_per_video must be at least 1"),
     ("model=3", "model: expected a mapping, got 3")],
)
def test_bad_values_are_named(override: str, message: str) -> None:
    with pytest.raises(VavaError) as error:
        load_config(None, parse_overrides([override]))
    assert message in str(error.value)


def test_bad_override_syntax_and_preset() -> None:
    with pytest.raises(VavaError, match="--set: 'steps' is not KEY=VALUE"):
        parse_overrides(["steps"])
    with pytest.raises(VavaError, match=r"--config: nope is neither a file nor a preset \(presets: .*pouring"):
        load_config("nope", {})
