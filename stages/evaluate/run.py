"""`vava evaluate` on a run folder: the report (json + md) and its plots."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from vava.core.correspondence import dtw_path, nearest_neighbour_path
from vava.core.embeddings_file import EMBEDDINGS_NAME, NO_BACKGROUND, load_embeddings
from vava.core.errors import invocation
from vava.core.figures import plot_alignment
from vava.core.run_folder import (
    ALIGNMENT_PLOT_NAME,
    LOG_NAME,
    LOSS_PLOT_NAME,
    PLOTS,
    TSNE_PLOT_NAME,
    checkpoint_tag,
    locked_run,
    tagged_name,
)
from vava.core.validation import option_error
from vava.stages.evaluate.plots import plot_loss_curve, plot_tsne
from vava.stages.evaluate.probes import PROBES, Registry
from vava.stages.evaluate.report import evaluate_embeddings, write_report


def evaluate_run(run_dir: str | Path, plots: bool = True, probes: Registry = PROBES, checkpoint: str = "last",
                 time_reference: bool = True, **options: object) -> tuple[dict, Plots]:
    """Evaluate RUN/embeddings.h5, write RUN/report.json and report.md (with the time-only reference row
    unless not `time_reference`), and the plots in RUN/plots/.

    For a `checkpoint` other than last (`vava.core.run_folder.checkpoint_tag`) every name carries its
    tag: embeddings-best.h5 -> report-best.json, report-best.md, plots/tsne-best.png, ...
    The run folder is locked meanwhile (so never while `vava train` or `vava embed` writes to it).
    """
    tag = checkpoint_tag(checkpoint)
    with locked_run(run_dir, "run", create=False) as run_dir:
        embeddings = run_dir / tagged_name(EMBEDDINGS_NAME, tag)
        if not embeddings.is_file():
            also = {} if checkpoint == "last" else {"checkpoint": checkpoint}
            raise option_error("run", f"{embeddings} not found; run `{invocation('embed', run=run_dir, **also)}` first")
        report = evaluate_embeddings(embeddings, probes, time_reference, **options)
        write_report(run_dir, report, probes, tag)
        return report, write_plots(run_dir, tag) if plots else Plots()


@dataclass
class Plots:
    """The plots written, and those left out with the reason (by file name)."""

    written: list[Path] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)


def write_plots(run_dir: Path, tag: str = "") -> Plots:
    """t-SNE of a few val videos, the alignment of two val videos of one action (left out when no action
    has two), and the loss curve when the run has a training log; names carry the checkpoint's `tag`."""
    out, embeddings = run_dir / PLOTS, run_dir / tagged_name(EMBEDDINGS_NAME, tag)
    plots = Plots([plot_tsne(embeddings, out / tagged_name(TSNE_PLOT_NAME, tag))])
    val = load_embeddings(embeddings).split("val")
    by_action = [[v for v in val if v.action == action] for action in dict.fromkeys(v.action for v in val)]
    pair = next((videos[:2] for videos in by_action if len(videos) >= 2), None)
    alignment = tagged_name(ALIGNMENT_PLOT_NAME, tag)
    if pair is None:  # videos of two actions have no correspondence to show
        plots.skipped[alignment] = "no action has two val videos to align"
    else:
        a, b = pair
        plots.written.append(plot_alignment(
            a.embeddings, b.embeddings, out / alignment, a.labels, b.labels,
            path=dtw_path(a.embeddings, b.embeddings), matches=nearest_neighbour_path(a.embeddings, b.embeddings),
            phases=a.phases, background_label=None if a.background_label == NO_BACKGROUND else a.background_label,
            names=(a.id, b.id)))
    if (run_dir / LOG_NAME).is_file():
        plots.written.append(plot_loss_curve(run_dir / LOG_NAME, out / tagged_name(LOSS_PLOT_NAME, tag)))
    return plots
