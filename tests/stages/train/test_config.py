"""Training configs: presets, overrides and the messages for bad keys, values (NaN, infinity) and files."""
from __future__ import annotations

from pathlib import Path

import pytest

from vava.core.config import CONFIG_DIR, parse_overrides, to_dict
from vava.core.errors import VavaError
from vava.stages.train.config import TrainConfig, load_config


def test_defaults_are_table_8_and_9() -> None:
    config = TrainConfig()
    assert (config.optim.lr, config.optim.weight_decay, config.data.batch_pairs) == (1e-4, 1e-5, 4)
    assert (config.model.conv_channels, config.model.embedding_dim, config.model.context_frames) == (512, 128, 1)
    # the context frame 0.5 s back: TCC's 15 frames at 30 fps, converted per video
    assert (config.model.context_seconds, config.model.context_stride) == (0.5, None)
    assert (config.optim.schedule, config.optim.warmup_steps) == ("constant", 0)


def test_context_seconds_become_frames_per_video() -> None:
    model = TrainConfig().model
    assert [model.stride(fps, "v") for fps in (30.0, 25.0, 15.0, 10.0, 1.0, 0.5)] == [15, 12, 8, 5, 1, 1]
    with pytest.raises(VavaError, match=r"^video 'v' has no frame rate, so model.context_seconds cannot be converted "
                                        r"to frames: set model.context_stride \(frames\) or model.context_frames=0$"):
        model.stride(None, "v")
    frames = load_config(None, {"model": {"context_stride": 15}}).model
    assert frames.stride(None, "v") == frames.stride(10.0, "v") == 15  # a stride in frames needs no rate
    assert load_config(None, {"model": {"context_frames": 0}}).model.stride(None, "v") == 1


def test_learning_rate_schedules() -> None:
    warm = load_config(None, {"optim": {"lr": 1.0, "warmup_steps": 4}}).optim
    assert [warm.lr_at(step, 10) for step in range(6)] == [0.25, 0.5, 0.75, 1.0, 1.0, 1.0]
    cosine = load_config(None, {"optim": {"lr": 1.0, "warmup_steps": 2, "schedule": "cosine"}}).optim
    lrs = [cosine.lr_at(step, 6) for step in range(6)]  # cosine over steps 2..6: progress 0, 1/4, 2/4, 3/4
    assert lrs == pytest.approx([0.5, 1.0, 1.0, (1 + 2**-0.5) / 2, 0.5, (1 - 2**-0.5) / 2])


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
    with pytest.raises(VavaError, match="^set: 'steps' is not KEY=VALUE"):
        parse_overrides(["steps"])
    with pytest.raises(VavaError, match=r"^config: nope is neither a file nor a preset \(presets: .*pouring"):
        load_config("nope", {})


# -- non-finite and misshapen values; config files of the wrong shape ------------------------------


@pytest.mark.parametrize(
    ("override", "message"),
    [("optim.lr=.nan", "optim.lr: expected a finite number, got nan"),
     ("optim.lr=nan", "optim.lr: expected a finite number, got nan"),
     ("optim.lr=1e400", "optim.lr: expected a finite number, got inf"),
     ("optim.weight_decay=-.inf", "optim.weight_decay: expected a finite number, got -inf"),
     ("optim.lr=1" + "0" * 400, "optim.lr: expected float, got 1000"),
     ("model.dropout=.nan", "model.dropout: expected a finite number, got nan"),
     ("loss.gamma=.inf", "loss.gamma: expected a finite number, got inf"),
     ("loss.sigma_prior=.nan", "loss.sigma_prior: expected a finite number, got nan"),
     ("loss={1: 2}", "loss: key 1 is not a string"),
     ("optim.lr=true", "optim.lr: expected float, got True"),
     ("seed=-1", r"seed must be in \[0, 2\*\*64\), got -1")],
)
def test_non_finite_and_misshapen_values_are_named(override: str, message: str) -> None:
    with pytest.raises(VavaError, match=f"^{message}"):
        load_config(None, parse_overrides([override]))


@pytest.mark.parametrize(("text", "message"), [("- steps: 3\n", "expected a mapping of keys to values, got a list"),
                                               ("just text\n", "expected a mapping of keys to values, got a str"),
                                               ("1: 2\nsteps: 3\n", None)])
def test_config_files_of_the_wrong_shape(tmp_path: Path, text: str, message: str | None) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(text)
    expected = rf"^{path}: {message}$" if message else r"^config: key 1 is not a string"
    with pytest.raises(VavaError, match=expected):
        load_config(str(path), {})
    path.write_bytes(b"\xff\xfe\x00binary")
    with pytest.raises(VavaError, match=rf"^{path}: not a YAML file \(not UTF-8 text\)$"):
        load_config(str(path), {})
