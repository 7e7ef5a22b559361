"""Synthetic dataset settings (pipeline/datasets/synthetic/config.py): each bad option named; the render size limit."""
from __future__ import annotations

from dataclasses import replace

import pytest

from vava.core.errors import VavaError
from vava.pipeline.datasets.synthetic import ACTIONS, CLEAN, SynthConfig, Variations


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"size": 33}, "^size: "),
        ({"size": 16}, "^size: "),
        ({"frames": (40, 30)}, "^frames: min 40 > max 30"),
        ({"frames": (4, 30)}, "^frames: "),
        ({"actions": len(ACTIONS) + 1}, "^actions: "),
        ({"actions": 0}, "^actions: "),
        ({"videos": 0}, "^videos: "),
        ({"val_fraction": 1.0}, "^val_fraction: "),
        ({"fps": 0}, "^fps: "),
        ({"seed": -1}, "^seed: "),
        ({"benchmark": 4}, "^benchmark: must be one of 1, 2, 3, got 4"),
    ],
)
def test_config_validation_names_the_option(overrides, message):
    with pytest.raises(VavaError, match=message):
        SynthConfig(**overrides)


def test_variation_strengths_are_validated():
    with pytest.raises(VavaError, match="^noise: "):
        Variations(noise=1.5)


def test_render_size_limit_leaves_the_usual_configs_alone() -> None:
    assert SynthConfig(size=64, frames=(40, 80)).longest_video() == 80
    full = replace(CLEAN, background=1.0)
    assert SynthConfig(frames=(40, 80), variations=full, benchmark=1).longest_video() == 80 + 3 * 40
    assert SynthConfig(frames=(40, 80), variations=full, benchmark=2).longest_video() == 80 + 240  # 75% background
    SynthConfig(size=256, frames=(40, 400), variations=full, benchmark=1)
    with pytest.raises(VavaError, match=r"^frames/size: .* over the 4 GiB limit; use fewer frames or a smaller "
                                        r"size$"):
        SynthConfig(size=512, frames=(40, 400), variations=replace(CLEAN, background=1.0))
