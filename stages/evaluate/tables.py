"""Markdown and plain-text tables of evaluation reports, laid out like the VAVA supplement's Tables 1-2.

Classification and AP@K are shown in percent (2 decimals), progression (R^2) and tau with 4
decimals; "-" marks a number that was not computed. The main table's AP@K is the frame-weighted
aggregation (LAV/VAOT/VAVA); report.md also lists the video-mean one (CARL).
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

Report = dict[str, object]
Table = tuple[list[str], list[list[str]]]


def run_label(report: Report) -> str:
    """The run folder's name (the "Model" column of the paper's tables)."""
    run = report.get("attrs", {}).get("run") or str(Path(report["file"]).parent)
    return Path(run).name or str(run)


def _percent(value: object) -> str:
    return "-" if value is None else f"{100 * value:.2f}"


def _fixed(value: object) -> str:
    return "-" if value is None else f"{value:.4f}"


def _union(reports: Sequence[Report], option: str) -> list:
    return sorted({value for r in reports for value in r["options"][option]})


def _number_columns(results: Report, fractions: list, ks: list) -> list[str]:
    classification = results.get("classification") or {}
    retrieval = (results.get("retrieval") or {}).get("frame_weighted") or {}
    return ([_percent(classification.get(str(f))) for f in fractions]
            + [_fixed(results.get("progress")), _fixed(results.get("kendall"))]
            + [_percent(retrieval.get(str(k))) for k in ks])


def _number_header(fractions: list, ks: list) -> list[str]:
    return [f"Classification {f}" for f in fractions] + ["Progress", "τ"] + [f"AP@{k}" for k in ks]


def main_table(reports: Sequence[Report], with_run_details: bool = False) -> Table:
    """One row per report: classification at each fraction, progress, tau, AP@K."""
    fractions, ks = _union(reports, "fractions"), _union(reports, "ks")
    details = ["Background", "Objective", "τ stride", "AP stride"] if with_run_details else []
    rows = []
    for report in reports:
        o = report["options"]
        row = [run_label(report)]
        if with_run_details:
            row += ["with" if o["background"] == "keep" else "without", str(report["attrs"].get("objective", "?")),
                    str(o["kendall_stride"]), str(o["retrieval_stride"])]
        rows.append(row + _number_columns(report["results"], fractions, ks))
    return ["Run", *details, *_number_header(fractions, ks)], rows


def per_action_table(report: Report) -> Table:
    o = report["options"]
    fractions, ks = o["fractions"], o["ks"]
    rows = [[action, str(values["train_videos"]), str(values["val_videos"]), *_number_columns(values, fractions, ks)]
            for action, values in report["per_action"].items()]
    return ["Action", "Train videos", "Val videos", *_number_header(fractions, ks)], rows


def per_action_comparison(reports: Sequence[Report]) -> Table:
    """Classification per action and run, laid out like the supplement's Table 5 (per activity)."""
    fractions = _union(reports, "fractions")
    actions = sorted({action for report in reports for action in report["per_action"]})
    rows = [[action, run_label(report),
             *(_percent((report["per_action"].get(action, {}).get("classification") or {}).get(str(f)))
               for f in fractions)]
            for action in actions for report in reports]
    return ["Action", "Run", *(f"Classification {f}" for f in fractions)], rows


def markdown(header: list[str], rows: list[list[str]]) -> str:
    lines = [header, ["---"] * len(header), *rows]
    return "\n".join("| " + " | ".join(cells) + " |" for cells in lines) + "\n"


def text(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(cells[i]) for cells in [header, *rows]) for i in range(len(header))]
    lines = [header, ["-" * w for w in widths], *rows]
    return "\n".join("  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths)))
                     for cells in lines) + "\n"


def report_markdown(report: Report) -> str:
    """The whole report.md: provenance, main table, retrieval, per action, optional probes, skips."""
    o, results = report["options"], report["results"]
    parts = [f"# Evaluation: {run_label(report)}\n", _provenance(report),
             "## Results (unweighted mean over actions)\n", markdown(*main_table([report]))]
    retrieval = results.get("retrieval")
    if retrieval:
        ks = o["ks"]
        rows = [[name, *[_percent(retrieval[agg].get(str(k))) for k in ks]]
                for name, agg in (("frame-weighted (LAV/VAOT/VAVA)", "frame_weighted"),
                                  ("video mean (CARL)", "video_mean"))]
        parts += ["## Fine-grained retrieval\n", markdown(["Aggregation", *[f"AP@{k}" for k in ks]], rows)]
    if len(report["per_action"]) > 1:
        parts += ["## Per action\n", markdown(*per_action_table(report))]
    if results.get("few_shot"):
        rows = [[k, _percent(v and v["mean"]), _percent(v and v["ci95"])] for k, v in results["few_shot"].items()]
        parts += [f"## Few-shot classification ({o['few_shot_episodes']} episodes, seed 42)\n",
                  markdown(["Labelled videos k", "Accuracy", "± 95 % CI"], rows)]
    if results.get("robustness"):
        deterministic = results.get("classification") or {}
        rows = [[f, _percent(deterministic.get(f)), _percent(v and v["mean"]), _percent(v and v["std"])]
                for f, v in results["robustness"].items()]
        parts += [f"## Classification over random train subsets (seeds 0..{o['robustness_seeds'] - 1})\n",
                  markdown(["Fraction", "First n videos", "Mean", "Std"], rows)]
    if report["skipped"]:
        parts += ["## Skipped\n", "\n".join(f"- {s['task']} ({s['action']}): {s['reason']}"
                                            for s in report["skipped"]) + "\n"]
    return "\n".join([*parts, "## Protocol\n", _protocol(o)])


def _provenance(report: Report) -> str:
    attrs, o = report["attrs"], report["options"]
    background = "kept as a class (with background)" if o["background"] == "keep" else "dropped (without background)"
    lines = [f"- {name}: `{attrs.get(name, '?')}`"
             for name in ("embedder", "objective", "step", "checkpoint", "feature_set", "fingerprint")]
    lines += [f"- embeddings: `{report['file']}`; videos: {report['videos']['train']} train, "
              f"{report['videos']['val']} val, {report['results']['actions']} action(s)",
              f"- background: {background}; classifier: {o['classifier']}; τ: stride {o['kendall_stride']}, "
              f"{o['kendall_distance']}; AP@K: stride {o['retrieval_stride']}; "
              f"progression: fraction {o['progress_fraction']}"]
    return "\n".join(lines) + "\n"


def _protocol(o: Report) -> str:
    return "\n".join([
        "- Every probe runs per action on that action's videos; headline numbers are unweighted means over actions.",
        "- Classification: trained on all labelled frames of the first n = max(1, floor(f N)) train videos in "
        "natural id order, accuracy over every labelled val frame (frames labelled -1 are ignored).",
        "- Progression: targets (t - tau_e) / T, tau_e = last frame of phase e (else the first frame of the next "
        "higher phase present, else T - 1); one OLS per key event on the first max(1, floor(f N)) train videos, "
        f"f = {o['progress_fraction']}; R^2 on all val frames, mean over events. Unlabelled and background frames "
        "are neither fit nor scored.",
        f"- τ: every ordered pair of val videos, stride {o['kendall_stride']}, {o['kendall_distance']} nearest "
        "neighbour, tau-b; undefined (NaN) pairs dropped.",
        f"- AP@K: precision of the K nearest frames (exact Euclidean) among the other val videos, stride "
        f"{o['retrieval_stride']}; ties go to the lower index.",
    ]) + "\n"
