"""Figures of a run, rendered with matplotlib's Agg canvas into PNG files.

- `plot_tsne`: t-SNE of the per-frame embeddings of a few val videos, coloured by phase
  (as Fig. 1 of the VAVA supplement);
- `plot_loss_curve`: the loss and each of its components over the training steps;
- `plot_relative_losses`: one line per run of a sweep, each loss relative to its first logged value;
- the alignment of two videos is `vava.core.figures.plot_alignment` (shared with `vava align`).

Each returns the path of the PNG written; bad input is a `VavaError` naming the file.
"""
from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np
from matplotlib.lines import Line2D
from sklearn.manifold import TSNE

from vava.core.embeddings_file import NO_BACKGROUND, VideoEmbeddings, load_embeddings
from vava.core.errors import VavaError, option_name
from vava.core.figures import new_figure, phase_colours, phase_legend, save_figure

TSNE_SIZE = (7.0, 6.0)          # inches
TSNE_PLOT_RIGHT = 0.7           # share of the width the points take; the legends sit right of them
LOSS_WIDTH, LOSS_ROW_HEIGHT = 9.0, 2.6
VIDEO_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")
LOG_COLUMNS_EXCLUDED = ("step", "lr", "steps_per_s")  # train_log.csv columns that are not losses


# -- t-SNE -------------------------------------------------------------------------------------
def _tsne_videos(path: Path, count: int, action: str | None) -> list[VideoEmbeddings]:
    """The first `count` val videos of `action`, or of the first val video's action."""
    val = load_embeddings(path).split("val")
    if not val:
        raise VavaError(f"{path}: no val video in this embeddings file (embed with {option_name('splits')} val)")
    action = action if action is not None else val[0].action
    chosen = [v for v in val if v.action == action][:count]
    if not chosen:
        raise VavaError(f"{path}: no val video of action {action!r}")
    return chosen


def _background(video: VideoEmbeddings) -> int | None:
    return None if video.background_label == NO_BACKGROUND else video.background_label


def plot_tsne(embeddings_path: str | Path, out_png: str | Path, videos: int = 3, seed: int = 0,
              action: str | None = None) -> Path:
    """t-SNE of the embeddings of `videos` (at most 8) val videos of one action, the first val video's
    unless `action` is given: colour = phase, marker = video."""
    path = Path(embeddings_path)
    if videos < 1:
        raise VavaError(f"{path}: videos must be at least 1, got {videos}")
    chosen = _tsne_videos(path, min(videos, len(VIDEO_MARKERS)), action)
    points = np.concatenate([v.embeddings for v in chosen]).astype(np.float64)
    if len(points) < 4:
        raise VavaError(f"{path}: t-SNE needs at least 4 frames, the chosen videos have {len(points)}")
    perplexity = min(30.0, max(1.0, (len(points) - 1) / 3))
    init = "pca" if points.shape[1] >= 2 else "random"  # PCA cannot make 2 components of 1-D (time-only) rows
    xy = TSNE(n_components=2, perplexity=perplexity, init=init, random_state=seed).fit_transform(points)

    figure = new_figure(TSNE_SIZE)
    ax = figure.add_subplot()
    bounds = np.cumsum([0] + [len(v.embeddings) for v in chosen])
    for video, marker, start, stop in zip(chosen, VIDEO_MARKERS, bounds[:-1], bounds[1:]):
        ax.scatter(xy[start:stop, 0], xy[start:stop, 1], c=phase_colours(video.labels, _background(video)),
                   marker=marker, s=18, linewidths=0.3, edgecolors="black")
    labels = np.concatenate([v.labels for v in chosen])
    figure.subplots_adjust(right=TSNE_PLOT_RIGHT)  # the legends go in the margin right of the points
    phase_legend(ax, labels, chosen[0].phases, _background(chosen[0]), loc="upper left", bbox_to_anchor=(1.02, 1))
    ax.legend(handles=[Line2D([], [], marker=m, linestyle="", color="black", label=v.id)
                       for v, m in zip(chosen, VIDEO_MARKERS)], title="video", fontsize=8, title_fontsize=8,
              loc="lower left", bbox_to_anchor=(1.02, 0))
    ax.set_title(f"t-SNE of the embeddings of {len(chosen)} val video(s), action {chosen[0].action!r}")
    ax.set_xticks([])
    ax.set_yticks([])
    return save_figure(figure, out_png)


# -- loss curve --------------------------------------------------------------------------------
def read_log(path: Path) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Steps and every loss column (loss first) of a train_log.csv."""
    if not path.is_file():
        raise VavaError(f"{path}: no such training log")
    with open(path, newline="") as handle:
        reader = csv.DictReader(handle)
        fields = reader.fieldnames or []
        rows = list(reader)
    if "step" not in fields or "loss" not in fields:
        raise VavaError(f"{path}: not a training log (needs step and loss columns, has {', '.join(fields) or 'none'})")
    if not rows:
        raise VavaError(f"{path}: the training log has no rows yet")
    series = [f for f in fields if f not in LOG_COLUMNS_EXCLUDED]
    try:
        values = {f: np.array([float(row[f]) for row in rows]) for f in ["step", *series]}
    except (TypeError, ValueError):
        raise VavaError(f"{path}: non-numeric or missing value in the training log") from None
    return values.pop("step"), values


def _wants_log_scale(values: np.ndarray) -> bool:
    """Log y when every value is positive and they span more than a decade."""
    finite = values[np.isfinite(values)]
    return bool(finite.size) and finite.min() > 0 and finite.max() / finite.min() > 10


def plot_loss_curve(log_csv: str | Path, out_png: str | Path) -> Path:
    """The loss and each component against the step, one subplot each (log y where they span decades)."""
    steps, series = read_log(Path(log_csv))
    columns = 1 if len(series) <= 2 else 2
    rows = math.ceil(len(series) / columns)
    figure = new_figure((LOSS_WIDTH, LOSS_ROW_HEIGHT * rows))
    axes = figure.subplots(rows, columns, squeeze=False, sharex=True).ravel()
    for ax, (name, values) in zip(axes, series.items()):
        ax.plot(steps, values, marker="." if len(steps) < 30 else None, linewidth=1.0)
        ax.set_title(name, fontsize=9)
        ax.set_yscale("log" if _wants_log_scale(values) else "linear")
        ax.grid(True, alpha=0.3)
    for ax in axes[len(series):]:
        ax.set_axis_off()
    for ax in axes[max(0, len(series) - columns):len(series)]:  # the lowest plot of each column
        ax.set_xlabel("step")
        ax.tick_params(labelbottom=True)
    figure.suptitle(f"training losses ({Path(log_csv).parent.name or log_csv})")
    figure.tight_layout()
    return save_figure(figure, out_png)


def plot_relative_losses(curves: dict[str, tuple[np.ndarray, np.ndarray]], out_png: str | Path, title: str) -> Path:
    """One line per run: (steps, loss / |first logged loss|), so that objectives of any scale compare."""
    if not curves:
        raise VavaError(f"{out_png}: no loss curve to plot")
    figure = new_figure((LOSS_WIDTH, LOSS_ROW_HEIGHT * 2))
    ax = figure.add_subplot()
    for name, (steps, values) in curves.items():
        ax.plot(steps, values, marker="." if len(steps) < 30 else None, linewidth=1.0, label=name)
    ax.set_yscale("log" if _wants_log_scale(np.concatenate([v for _, v in curves.values()])) else "linear")
    ax.set_xlabel("step")
    ax.set_ylabel("loss / |first logged loss|")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8, ncol=2)
    ax.set_title(title, fontsize=9)
    figure.tight_layout()
    return save_figure(figure, out_png)
