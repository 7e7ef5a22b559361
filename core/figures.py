"""Figures shared by evaluation and alignment, rendered with matplotlib's Agg canvas into PNG files:
phase colours, and `plot_alignment` (the distance matrix of two videos with nearest-neighbour
matches and/or a DTW path drawn on it, phase bars along both axes).

Each plot returns the path of the PNG written (by create-and-rename); bad input is a `VavaError`
naming the file.
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib import colormaps
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from mpl_toolkits.axes_grid1 import make_axes_locatable
from sklearn.metrics import pairwise_distances

from vava.core.errors import VavaError
from vava.core.files import atomic_path

DPI = 100
ALIGNMENT_SIZE = (7.0, 6.5)     # inches
LEGEND_COLUMNS = 4              # of the alignment plot's legend, below the matrix
LEGEND_ROW = 0.22               # inches a legend row takes
BACKGROUND_COLOUR = (0.6, 0.6, 0.6)
UNKNOWN_COLOUR = (0.85, 0.85, 0.85)


# -- phase colours -------------------------------------
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
    return f"{name} (background)" if label == background_label and name != "background" else name


def phase_handles(labels: np.ndarray, phases: Sequence[str], background_label: int | None) -> list[Patch]:
    """A legend entry (colour patch and name) for each phase in `labels`."""
    present = np.unique(labels)
    colours = phase_colours(present, background_label)
    return [Patch(color=c, label=phase_name(int(label), phases, background_label)) for label, c in zip(present, colours)]


def phase_legend(ax: Axes, labels: np.ndarray, phases: Sequence[str], background_label: int | None,
                 **legend_options: object) -> None:
    ax.add_artist(ax.legend(handles=phase_handles(labels, phases, background_label), title="phase", fontsize=8,
                            title_fontsize=8, **legend_options))


# -- writing -------------------------------------------------------------------------------
def new_figure(size: tuple[float, float]) -> Figure:
    figure = Figure(figsize=size, dpi=DPI)
    FigureCanvasAgg(figure)
    return figure


def save_figure(figure: Figure, out_png: str | Path) -> Path:
    """Write `figure` to `out_png` by create-and-rename (a symlink there is replaced, never followed)."""
    out_png = Path(out_png)
    try:
        out_png.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise VavaError(f"{out_png}: cannot write the figure ({err.strerror or err})") from None
    with atomic_path(out_png) as tmp:
        figure.savefig(tmp, dpi=DPI, format="png")
    return out_png


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

    figure = new_figure(ALIGNMENT_SIZE)
    ax = figure.add_subplot()
    image = ax.imshow(pairwise_distances(a, b), cmap="viridis", aspect="auto", interpolation="nearest")
    known = [x for x in (labels_a, labels_b) if x is not None]
    handles = phase_handles(np.concatenate(known), phases, background_label) if known else []
    if matches is not None:
        handles.append(ax.scatter(matches, np.arange(len(a)), s=6, c="white", edgecolors="black", linewidths=0.3,
                                  label="nearest neighbour"))
    if path is not None:
        handles += ax.plot(path[:, 1], path[:, 0], color="red", linewidth=1.2, label="DTW path")
    if handles:  # below the matrix, never over it
        rows = -(-len(handles) // LEGEND_COLUMNS)
        figure.subplots_adjust(bottom=(0.6 + LEGEND_ROW * rows) / ALIGNMENT_SIZE[1])
        figure.legend(handles=handles, loc="lower center", ncol=min(LEGEND_COLUMNS, len(handles)), fontsize=8,
                      frameon=False)
    ax.set_xlabel(f"frame of {names[1]}")
    ax.set_ylabel(f"frame of {names[0]}")
    divider = make_axes_locatable(ax)  # the bars span the matrix's width and height, pixel for pixel
    _phase_bar(divider.append_axes("top", size="4%", pad=0.05), labels_b, background_label, vertical=False)
    _phase_bar(divider.append_axes("left", size="4%", pad=0.55), labels_a, background_label, vertical=True)
    figure.colorbar(image, cax=divider.append_axes("right", size="4%", pad=0.1), label="Euclidean distance")
    figure.suptitle(f"alignment of {names[0]} ({len(a)} frames) and {names[1]} ({len(b)} frames)")
    return save_figure(figure, out_png)
