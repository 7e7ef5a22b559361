"""Evaluation plots (stages/evaluate/plots.py, vava.core.figures): PNG sizes and errors naming the file."""
from __future__ import annotations

import csv
from pathlib import Path

import h5py
import numpy as np
import pytest

from tests.helpers import pixels, png_size
from vava.core.correspondence import dtw_path, nearest_neighbour_path
from vava.core.errors import VavaError
from vava.core.figures import ALIGNMENT_SIZE, plot_alignment
from vava.stages.evaluate.plots import LOSS_ROW_HEIGHT, LOSS_WIDTH, TSNE_SIZE, plot_loss_curve, plot_tsne


def write_embeddings(path: Path) -> Path:
    """An embeddings.h5 of three val videos and one train video (two phases, background label 2)."""
    rng = np.random.default_rng(0)
    with h5py.File(path, "w") as handle:
        for i, split in enumerate(["val", "val", "train", "val"]):
            labels = np.repeat([0, 1, 2], 8)
            group = handle.create_group(f"videos/v{i}")
            embeddings = labels[:, None] + 0.1 * rng.standard_normal((24, 8))
            group.create_dataset("embeddings", data=embeddings.astype(np.float32))
            group.create_dataset("labels", data=labels)
            group.attrs.update({"id": f"v{i}", "split": split, "action": "pour", "phases": ["reach", "pour", "idle"],
                                "background_label": 2})
    return path


def test_plots_write_pngs_of_the_expected_size(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    a, b = rng.standard_normal((20, 4)), rng.standard_normal((26, 4))
    png = plot_alignment(a, b, tmp_path / "figs" / "align.png", np.repeat([0, 1], 10), np.repeat([0, 1], 13),
                         path=dtw_path(a, b), matches=nearest_neighbour_path(a, b), phases=("up", "down"))
    assert png_size(png) == pixels(ALIGNMENT_SIZE)
    assert png_size(plot_tsne(write_embeddings(tmp_path / "embeddings.h5"), tmp_path / "tsne.png")) == pixels(TSNE_SIZE)

    log = tmp_path / "train_log.csv"
    with open(log, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["step", "loss", "align", "intra", "lr", "steps_per_s"])
        writer.writerows([step, 10.0 / step, 1.0 / step, -0.5, 1e-4, 3.0] for step in range(10, 110, 10))
    assert png_size(plot_loss_curve(log, tmp_path / "loss.png")) == pixels((LOSS_WIDTH, 2 * LOSS_ROW_HEIGHT))


def test_plot_errors_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(VavaError, match="missing.h5: no such file"):
        plot_tsne(tmp_path / "missing.h5", tmp_path / "t.png")
    (tmp_path / "junk.h5").write_text("not hdf5")
    with pytest.raises(VavaError, match="junk.h5: not a readable HDF5 file"):
        plot_tsne(tmp_path / "junk.h5", tmp_path / "t.png")
    with pytest.raises(VavaError, match="missing.csv: no such training log"):
        plot_loss_curve(tmp_path / "missing.csv", tmp_path / "l.png")
    (tmp_path / "log.csv").write_text("step,lr\n1,0.1\n")
    with pytest.raises(VavaError, match="log.csv: not a training log"):
        plot_loss_curve(tmp_path / "log.csv", tmp_path / "l.png")
    with pytest.raises(VavaError, match="a.png: embeddings must be"):
        plot_alignment(np.zeros((3, 2)), np.zeros((3, 5)), tmp_path / "a.png")


def _legends_clear_of_the_data(monkeypatch: pytest.MonkeyPatch, module: object, draw) -> int:
    """Draw a plot, keep its figure, and check that no legend covers an axes with data or leaves the figure;
    return how many legends there were."""
    kept, save = [], module.save_figure
    monkeypatch.setattr(module, "save_figure", lambda figure, out: kept.append(figure) or save(figure, out))
    draw()
    (figure,) = kept
    renderer = figure.canvas.get_renderer()
    figure.draw(renderer)
    legends = [*figure.legends, *(artist for ax in figure.axes for artist in (*ax.artists, ax.get_legend())
                                  if artist is not None and type(artist).__name__ == "Legend")]
    data_axes = [ax for ax in figure.axes if ax.images or ax.collections or ax.lines]
    box = figure.bbox
    for legend in legends:
        extent = legend.get_window_extent(renderer)
        assert not any(extent.overlaps(ax.get_window_extent(renderer)) for ax in data_axes)
        assert box.x0 <= extent.x0 and extent.x1 <= box.x1 and box.y0 <= extent.y0 and extent.y1 <= box.y1
    return len(legends)


def test_legends_never_cover_the_data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import vava.core.figures as figures
    import vava.stages.evaluate.plots as plots

    rng = np.random.default_rng(3)
    a, b = rng.standard_normal((40, 4)), rng.standard_normal((50, 4))
    phases = ("reach", "tilt", "pour", "return", "wipe", "set down", "background")
    assert _legends_clear_of_the_data(monkeypatch, figures, lambda: plot_alignment(
        a, b, tmp_path / "a.png", np.arange(40) % 7, np.arange(50) % 7, path=dtw_path(a, b),
        matches=nearest_neighbour_path(a, b), phases=phases, background_label=6)) == 1
    assert _legends_clear_of_the_data(monkeypatch, plots, lambda: plot_tsne(
        write_embeddings(tmp_path / "embeddings.h5"), tmp_path / "t.png")) == 2
