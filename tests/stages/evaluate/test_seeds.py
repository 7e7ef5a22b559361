"""A sweep's numbers over seeds (stages/evaluate/seeds.py): cells, convergence, mean relative loss curves."""
from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from tests.helpers import pixels, png_size
from vava.core.errors import VavaError
from vava.stages.evaluate.plots import LOSS_ROW_HEIGHT, LOSS_WIDTH, plot_relative_losses, read_log
from vava.stages.evaluate.probes.base import fixed, percent
from vava.stages.evaluate.seeds import convergence, last_tenth_in_standard_errors, relative_curve, summarise


@pytest.mark.parametrize(
    ("values", "fmt", "seeds", "cell"),
    [([0.5, 0.6, 0.7], percent, 3, "60.00 ± 10.00"),
     ([0.8, 0.9, None], percent, 3, "85.00 ± 7.07 (n=2)"),         # sd of 80, 90: sqrt(50)
     ([0.5], percent, 1, "50.00"),                                 # one seed: the value, no sd
     ([0.5, "0.7", True, float("nan")], percent, 3, "50.00 (n=1)"),  # only finite numbers count
     ([None, None], percent, 2, "-"),
     ([1, 2, 4], fixed, 3, "2.3333 ± 1.5275"),                     # sd: sqrt((16 + 1 + 25) / 9 / 2)
     ([10.2, 11.7], "{:.0f}".format, 2, "11 ± 1")],
)
def test_summarise_is_mean_and_sample_sd(values: list, fmt, seeds: int, cell: str) -> None:
    assert summarise(values, fmt, seeds) == cell


def write_log(path: Path, rows: list[tuple[int, float]]) -> Path:
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["step", "loss", "align", "lr", "steps_per_s"])
        writer.writerows([step, loss, 0.0, 1e-4, 3.0] for step, loss in rows)
    return path


def test_convergence_of_a_hand_written_log(tmp_path: Path) -> None:
    # S = 100, logged every 5: (0, 10] holds 5, 10 (mean 9), (80, 90] holds 85, 90 (mean 1.5), (90, 100] holds
    # 95, 100 (mean 1.35): the last tenth made 0.15 of the whole change of 7.65
    losses = {85: 2.0, 90: 1.0, 95: 1.2, 100: 1.5}
    steps, series = read_log(write_log(tmp_path / "log.csv", [(s, losses.get(s, 9.0)) for s in range(5, 105, 5)]))
    assert convergence(steps, series["loss"], 100) == pytest.approx(0.15 / 7.65)
    assert convergence(steps, -series["loss"], 100) == pytest.approx(-0.15 / 7.65)  # the sign says rising or falling
    assert convergence(steps, series["loss"] - 100, 100) == pytest.approx(0.15 / 7.65)  # any offset, negative too

    every_ten = np.arange(10, 110, 10)  # one logged step per window: not enough
    assert convergence(every_ten, np.ones(10), 100) is None
    assert convergence(np.arange(1, 21), np.r_[np.ones(16), 0.0, 0.0, 1.0, 1.0], 20) is None  # m0 = m2, m1 apart
    assert convergence(np.arange(1, 21), np.ones(20), 20) == 0.0
    # the windows' edges are exact: S = 30 -> (0, 3], (24, 27] and (27, 30]; steps 24 and 31 are outside
    steps = np.array([1, 3, 24, 25, 27, 28, 30, 31])
    assert convergence(steps, np.array([10.0, 10.0, 100.0, 4.0, 2.0, 1.5, 1.5, 100.0]), 30) == pytest.approx(1.5 / 8.5)


def test_last_tenth_in_standard_errors_of_a_hand_written_log(tmp_path: Path) -> None:
    # the log of the test above: (80, 90] holds 2.0, 1.0 (mean 1.5, sample variance 0.5), (90, 100] holds 1.2, 1.5
    # (mean 1.35, variance 0.045): z = 0.15 / sqrt(0.5 / 2 + 0.045 / 2)
    losses = {85: 2.0, 90: 1.0, 95: 1.2, 100: 1.5}
    steps, series = read_log(write_log(tmp_path / "log.csv", [(s, losses.get(s, 9.0)) for s in range(5, 105, 5)]))
    assert last_tenth_in_standard_errors(steps, series["loss"], 100) == pytest.approx(0.15 / np.sqrt(0.2725))
    assert last_tenth_in_standard_errors(steps, -series["loss"], 100) == pytest.approx(-0.15 / np.sqrt(0.2725))
    assert last_tenth_in_standard_errors(np.arange(10, 110, 10), np.ones(10), 100) is None  # 1 step per window
    assert last_tenth_in_standard_errors(np.arange(1, 21), np.r_[np.ones(18), 0.5, 0.5], 20) is None  # no noise
    # the same small fall (0.01) in loud and in quiet noise (+-a alternating: each window's sample variance is
    # a² 100/99): c is alike, z = 0.01 / (a sqrt(2 / 99)) tells them apart
    steps, noise = np.arange(1, 1001), np.tile([1.0, -1.0], 500)
    falling = np.r_[np.full(800, 2.0), np.full(100, 1.01), np.full(100, 1.0)]
    for a in (0.2, 0.002):
        assert convergence(steps, falling + a * noise, 1000) == pytest.approx(0.01, abs=1e-9)
        assert last_tenth_in_standard_errors(steps, falling + a * noise, 1000) == pytest.approx(0.01 / (a * np.sqrt(2 / 99)))


def test_a_loss_falling_towards_zero_reaches_a_plateau() -> None:
    """A cross-entropy halving every 100 steps: its last tenth makes 4 % of its whole fall after 300 steps,
    0.2 % after 1000 (relative to m1, the last tenth's fall grows instead: 0.19, then 0.5, however long)."""
    steps = np.arange(10, 1010, 10)
    loss = 2.0 * 0.5 ** (steps / 100)
    assert convergence(steps, loss, 1000) == pytest.approx(0.00196, abs=1e-5)
    assert convergence(steps[:30], loss[:30], 300) == pytest.approx(0.0420, abs=1e-4)


def test_relative_curve_is_the_mean_at_common_steps() -> None:
    a = (np.array([1, 2, 3]), np.array([2.0, 1.0, 1.0]))
    b = (np.array([1, 2, 3, 4]), np.array([-4.0, -4.0, -2.0, -1.0]))  # divided by |first|: -1, -1, -0.5
    steps, values = relative_curve([a, b])
    assert steps.tolist() == [1, 2, 3] and values.tolist() == [0.0, -0.25, 0.0]
    assert relative_curve([(np.array([1, 2]), np.array([0.0, 1.0]))]) is None  # no scale
    assert relative_curve([(np.array([1]), np.array([1.0])), (np.array([2]), np.array([1.0]))]) is None
    assert relative_curve([]) is None


def test_plot_relative_losses(tmp_path: Path) -> None:
    curves = {"vava": (np.arange(1, 11), np.linspace(1, 0.2, 10)), "tcc": (np.arange(1, 11), np.ones(10))}
    png = plot_relative_losses(curves, tmp_path / "curves.png", "title")
    assert png_size(png) == pixels((LOSS_WIDTH, 2 * LOSS_ROW_HEIGHT))
    with pytest.raises(VavaError, match=r"none\.png: no loss curve to plot"):
        plot_relative_losses({}, tmp_path / "none.png", "title")
