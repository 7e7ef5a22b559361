"""Figures of a run, rendered with matplotlib's Agg canvas into PNG files.

- `plot_tsne`: t-SNE of the per-frame embeddings of a few val videos, coloured by phase
  (as Fig. 1 of the VAVA supplement);
- `plot_alignment`: the distance matrix of two videos with the nearest-neighbour matches and/or a
  DTW path drawn on it, phase bars along both axes;
- `plot_loss_curve`: the loss and each of its components over the training steps.

Each returns the path of the PNG written; bad input is a `VavaError` naming the file.
"""
from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib import colormaps
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from mpl_toolkits.axes_grid1 import make_axes_locatable
from sklearn.manifold import TSNE
from sklearn.metrics import pairwise_distances

from pipeline.errors import VavaError
from pipeline.files import atomic_path
from stages.evaluate.embeddings import NO_BACKGROUND, VideoEmbeddings, load_embeddings

DPI = 100
TSNE_SIZE = (7.0, 6.0)          # inches
ALIGNMENT_SIZE = (7.0, 6.5)
LOSS_WIDTH, LOSS_ROW_HEIGHT = 9.0, 2.6
BACKGROUND_COLOUR = (0.6, 0.6, 0.6)
UNKNOWN_COLOUR = (0.85, 0.85, 0.85)
VIDEO_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")
LOG_COLUMNS_EXCLUDED = ("step", "lr", "steps_per_s")  # train_log.csv columns that are not losses


# -- phase colours (shared with the alignment video) -------------------------------------
def phase_colours(labels: np.ndarray, background_label: int | None = None) -> np.ndarray:
    """(T,) phase labels -> (T, 3) RGB in [0, 1]: tab10 per phase, grey for background, light grey
    for unknown (-1) frames."""
    labels = np.asarray(labels, dtype=np.int64)
    palette = np.asarray(colormaps["tab10"].colors)
    colours = palette[np.maximum(labels, 0) % len(palette)]
    colours[labels < 0] = UNKNOWN_COLOUR
    if background_label is not None:
        colours[labels == background_label] = BACKGROUND_COLOUR
    return colours


def phase_name(label: int, phases: Sequence[str], background_label: int | None) -> str:
    if label < 0:
        return "unknown"
    name = phases[label] if label < len(phases) else f"phase {label}"
    return f"{name} (background)" if label == background_label else name


def _phase_legend(ax: Axes, labels: np.ndarray, phases: Sequence[str], background_label: int | None,
                  **legend_options: object) -> None:
    present = np.unique(labels)
    colours = phase_colours(present, background_label)
    handles = [Patch(color=c, label=phase_name(int(label), phases, background_label))
               for label, c in zip(present, colours)]
    ax.add_artist(ax.legend(handles=handles, title="phase", fontsize=8, title_fontsize=8, **legend_options))


# -- writing -------------------------------------------------------------------------------
def _new_figure(size: tuple[float, float]) -> Figure:
    figure = Figure(figsize=size, dpi=DPI)
    FigureCanvasAgg(figure)
    return figure


def _save(figure: Figure, out_png: str | Path) -> Path:
    """Write `figure` to `out_png` by create-and-rename (a symlink there is replaced, never followed)."""
    out_png = Path(out_png)
    try:
        out_png.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise VavaError(f"{out_png}: cannot write the figure ({err.strerror or err})") from None
    with atomic_path(out_png) as tmp:
        figure.savefig(tmp, dpi=DPI, format="png")
    return out_png


# -- t-SNE -------------------------------------------------------------------------------------
def _tsne_videos(path: Path, count: int, action: str | None) -> list[VideoEmbeddings]:
    """The first `count` val videos of `action`, or of the first val video's action."""
    val = load_embeddings(path, require_labels=False).split("val")
    if not val:
        raise VavaError(f"{path}: no val video in this embeddings file (embed with --splits val)")
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
    xy = TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(points)

    figure = _new_figure(TSNE_SIZE)
    ax = figure.add_subplot()
    bounds = np.cumsum([0] + [len(v.embeddings) for v in chosen])
    for video, marker, start, stop in zip(chosen, VIDEO_MARKERS, bounds[:-1], bounds[1:]):
        ax.scatter(xy[start:stop, 0], xy[start:stop, 1], c=phase_colours(video.labels, _background(video)),
                   marker=marker, s=18, linewidths=0.3, edgecolors="black")
    labels = np.concatenate([v.labels for v in chosen])
    _phase_legend(ax, labels, chosen[0].phases, _background(chosen[0]), loc="upper left")
    ax.legend(handles=[Line2D([], [], marker=m, linestyle="", color="black", label=v.id)
                       for v, m in zip(chosen, VIDEO_MARKERS)], title="video", fontsize=8, title_fontsize=8,
              loc="lower right")
    ax.set_title(f"t-SNE of the embeddings of {len(chosen)} val video(s), action {chosen[0].action!r}")
    ax.set_xticks([])
    ax.set_yticks([])
    return _save(figure, out_png)


# -- alignment ---------------------------------------------------------------------------------
def _check_alignment_input(out_png: Path, a: np.ndarray, b: np.ndarray, labels_a: np.ndarray | None,
                           labels_b: np.ndarray | None, path: np.ndarray | None, matches: np.ndarray | None) -> None:
    if a.ndim != 2 or b.ndim != 2 or not len(a) or not len(b) or a.shape[1] != b.shape[1]:
        raise VavaError(f"{out_png}: embeddings must be non-empty (T, D) arrays of the same D, "
                        f"got {a.shape} and {b.shape}")
    for name, labels, rows in (("labels_a", labels_a, len(a)), ("labels_b", labels_b, len(b))):
        if labels is not None and labels.shape != (rows,):
            raise VavaError(f"{out_png}: {name} has shape {labels.shape}, expected ({rows},)")
    if path is not None and (path.ndim != 2 or path.shape[1] != 2 or path.min(initial=0) < 0
                             or (path.max(axis=0, initial=0) >= (len(a), len(b))).any()):
        raise VavaError(f"{out_png}: path must be (K, 2) pairs of frame indices within {len(a)} x {len(b)}")
    if matches is not None and (matches.shape != (len(a),) or matches.min() < 0 or matches.max() >= len(b)):
        raise VavaError(f"{out_png}: matches must give a frame of B (< {len(b)}) for each of the {len(a)} frames of A")


def _phase_bar(ax: Axes, labels: np.ndarray | None, background_label: int | None, vertical: bool) -> None:
    ax.set_xticks([])
    ax.set_yticks([])
    if labels is None:
        ax.set_axis_off()
        return
    strip = phase_colours(labels, background_label)
    ax.imshow(strip[:, None] if vertical else strip[None], aspect="auto", interpolation="nearest")


def plot_alignment(a: np.ndarray, b: np.ndarray, out_png: str | Path, labels_a: np.ndarray | None = None,
                   labels_b: np.ndarray | None = None, path: np.ndarray | None = None,
                   matches: np.ndarray | None = None, phases: Sequence[str] = (),
                   background_label: int | None = None, names: tuple[str, str] = ("A", "B")) -> Path:
    """Euclidean distance matrix of embeddings `a` (rows) and `b` (columns), with the nearest-neighbour
    `matches` (B's frame for each frame of A; dots) and a warping `path` of (i, j) pairs (line)."""
    out_png = Path(out_png)
    a, b = np.asarray(a), np.asarray(b)
    labels_a, labels_b, path, matches = (None if x is None else np.asarray(x)
                                         for x in (labels_a, labels_b, path, matches))
    _check_alignment_input(out_png, a, b, labels_a, labels_b, path, matches)

    figure = _new_figure(ALIGNMENT_SIZE)
    ax = figure.add_subplot()
    image = ax.imshow(pairwise_distances(a, b), cmap="viridis", aspect="auto", interpolation="nearest")
    known = [x for x in (labels_a, labels_b) if x is not None]
    if known:
        _phase_legend(ax, np.concatenate(known), phases, background_label, loc="upper right")
    if matches is not None:
        ax.scatter(matches, np.arange(len(a)), s=6, c="white", label="nearest neighbour")
    if path is not None:
        ax.plot(path[:, 1], path[:, 0], color="red", linewidth=1.2, label="DTW path")
    if matches is not None or path is not None:
        ax.legend(loc="lower left", fontsize=8)
    ax.set_xlabel(f"frame of {names[1]}")
    ax.set_ylabel(f"frame of {names[0]}")
    divider = make_axes_locatable(ax)  # the bars span the matrix's width and height, pixel for pixel
    _phase_bar(divider.append_axes("top", size="4%", pad=0.05), labels_b, background_label, vertical=False)
    _phase_bar(divider.append_axes("left", size="4%", pad=0.55), labels_a, background_label, vertical=True)
    figure.colorbar(image, cax=divider.append_axes("right", size="4%", pad=0.1), label="Euclidean distance")
    figure.suptitle(f"alignment of {names[0]} ({len(a)} frames) and {names[1]} ({len(b)} frames)")
    return _save(figure, out_png)


# -- loss curve --------------------------------------------------------------------------------
def _read_log(path: Path) -> tuple[np.ndarray, dict[str, np.ndarray]]:
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
    steps, series = _read_log(Path(log_csv))
    columns = 1 if len(series) <= 2 else 2
    rows = math.ceil(len(series) / columns)
    figure = _new_figure((LOSS_WIDTH, LOSS_ROW_HEIGHT * rows))
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
    return _save(figure, out_png)
