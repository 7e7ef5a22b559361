"""How long training takes: the estimate after the first steps, its CPU warning, the rough plan estimate."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from tests.stages.train.helpers import config
from vava.core.formatting import duration
from vava.stages.train import estimate
from vava.stages.train.config import load_config
from vava.stages.train.estimate import StepClock, rough_seconds_per_step
from vava.stages.train.loop import train

CPU, CUDA = torch.device("cpu"), torch.device("cuda")


def test_the_estimate_comes_once_after_the_warm_up_step_and_three_timed_ones() -> None:
    clock = StepClock(0, 1000, CUDA)
    # step 1 takes 50 s (warm-up, not counted); steps 2-4 take 2 s each
    assert clock.tick(1, now=50.0) == [] and clock.tick(2, now=52.0) == [] and clock.tick(3, now=54.0) == []
    assert clock.tick(4, now=56.0) == ["estimate: 1000 steps x 2.00 s/step = 33 min"]
    assert clock.tick(5, now=58.0) == []  # once


def test_slow_steps_give_the_estimate_after_thirty_seconds_and_warn_on_cpu() -> None:
    clock = StepClock(0, 1000, CPU)
    assert clock.tick(1, now=92.0) == []
    assert clock.tick(2, now=184.0) == [
        "estimate: 1000 steps x 92.00 s/step = 25.6 h",
        "warning: about 25.5 h of training on CPU; to try the pipeline, train with config cpu (a few minutes) "
        "or fewer steps, or on a GPU (device cuda)"]


def test_no_warning_under_an_hour_and_a_resumed_run_says_what_is_left() -> None:
    clock = StepClock(900, 1000, CPU)
    clock.tick(901, now=0.0)
    assert clock.tick(904, now=6.0) == ["estimate: 1000 steps x 2.00 s/step = 33 min (3 min for the 100 steps left)"]
    assert StepClock(0, 3, CPU).tick(1, now=0.0) == [] and StepClock(0, 1, CPU).tick(1, now=0.0) == []


@pytest.mark.parametrize(("seconds", "text"), [(4.4, "4 s"), (89, "89 s"), (600, "10 min"), (3 * 3600, "3.0 h"),
                                                (3 * 86400, "3.0 days"), (1772.5 * 86400, "4.9 years")])
def test_durations(seconds: float, text: str) -> None:
    assert duration(seconds) == text


def test_training_prints_the_estimate(toy_features: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    train(toy_features, tmp_path / "run", config("steps=6"), progress=False)
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("estimate:")]
    assert len(lines) == 1 and lines[0].startswith("estimate: 6 steps x ") and "s/step = " in lines[0]


def test_rough_estimate_scales_the_embedder_time_to_a_step(monkeypatch: pytest.MonkeyPatch) -> None:
    ticks = iter(range(100))
    monkeypatch.setattr(estimate.time, "perf_counter", lambda: float(next(ticks)))  # every pass takes 1 s
    # 1 s for ROUGH_FRAMES = 16 frames; a step embeds 2 x 4 pairs x 40 frames = 320 frames
    assert rough_seconds_per_step(config("data.batch_pairs=4", "data.frames_per_video=40"), (16, 4, 4), CPU) == 20.0
    # a step of fewer frames is timed on all of them: 2 x 1 pair x 4 frames
    assert rough_seconds_per_step(config("data.batch_pairs=1", "data.frames_per_video=4"), (16, 4, 4), CPU) == 1.0


def test_the_cpu_preset_steps_far_faster_than_table_9() -> None:
    maps = (1024, 7, 7)  # ResNet-50 conv4 maps at 112 px (224 px is 4x the work for both, and slow for a test)
    cpu = load_config("cpu", {})
    table_9 = rough_seconds_per_step(load_config(None, {}), maps, CPU)
    # measured 10-28x apart on 2 busy cores; timings are noisy, so only a wide margin is checked
    assert table_9 > 5 * rough_seconds_per_step(cpu, maps, CPU)
    assert cpu.steps <= 300 and cpu.objective == "vava"
