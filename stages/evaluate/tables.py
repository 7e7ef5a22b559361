"""Markdown and plain-text tables of evaluation reports, laid out like the VAVA supplement's Tables 1-2.

The number columns, report.md's probe sections and its line of probe settings come from the probe
registry. Classification, AP@K and the targeted metrics are shown in percent (2 decimals),
progression (R^2) and tau with 4 decimals; "-" marks a number that was not computed. The main
table's AP@K is the frame-weighted aggregation (LAV/VAOT/VAVA); report.md also lists the video-mean
one (CARL). The Objective column names a reference row (an identity file) by what it embeds frames
by: "time only", "frozen features (raw)" or "frozen features (standardised)".
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from vava.core.embeddings_file import IDENTITY_KINDS, identity_kind
from vava.core.errors import option_name
from vava.stages.evaluate.probes import PROBES, Registry
from vava.stages.evaluate.probes.base import Column, Report, by_reason, markdown, percent
from vava.stages.evaluate.probes.classification import accuracy_at

Table = tuple[list[str], list[list[str]]]


def objective_label(report: Report) -> str:
    """The run's objective, or for a reference row (an identity file) what it embeds frames by ("time only")."""
    kind = identity_kind(report["attrs"])
    return IDENTITY_KINDS.get(kind, kind) if kind else str(report["attrs"].get("objective", "?"))


RUN_DETAILS = [Column("Background", lambda report: "with" if report["options"]["background"] == "keep" else "without"),
               Column("Objective", objective_label)]


def run_label(report: Report) -> str:
    """The run folder's name (the "Model" column of the paper's tables)."""
    run = report.get("attrs", {}).get("run") or str(Path(report["file"]).parent)
    return Path(run).name or str(run)


def _merged_options(reports: Sequence[Report]) -> dict[str, object]:
    """The reports' options; a list option is the sorted union of the reports' values."""
    merged = dict(reports[0]["options"])
    for name, value in merged.items():
        if isinstance(value, list):
            merged[name] = sorted({item for report in reports for item in report["options"].get(name, [])})
    return merged


def _number_columns(options: dict[str, object], probes: Registry) -> list[Column]:
    return [column for probe in probes.values() for column in probe.columns(options)]


def main_table(reports: Sequence[Report], probes: Registry = PROBES, with_run_details: bool = False) -> Table:
    """One row per report: each probe's number columns (classification at each fraction, progress, tau, AP@K)."""
    numbers = _number_columns(_merged_options(reports), probes)
    details = [*RUN_DETAILS, *(c for probe in probes.values() for c in probe.setting_columns())] \
        if with_run_details else []
    rows = [[run_label(report), *(c.cell(report) for c in details), *(c.cell(report["results"]) for c in numbers)]
            for report in reports]
    return ["Run", *(c.title for c in details), *(c.title for c in numbers)], rows


def with_references(report: Report) -> list[Report]:
    """The report and its reference rows (`references`, e.g. the time-only row), each as a report of its own."""
    rows = [report]
    for kind, reference in report.get("references", {}).items():
        rows.append({**report, **reference, "attrs": {**report["attrs"], "embedder": "identity", "identity_kind": kind,
                                                      "run": f"{IDENTITY_KINDS.get(kind, kind)} (reference)"}})
    return rows


def results_table(report: Report, probes: Registry = PROBES) -> tuple[Table, list[str]]:
    """One report's main table with its reference rows, less the number columns empty in every row; and
    the titles of those left out that belong to the tasks evaluated (the others were not asked for)."""
    table, hidden = without_empty_columns(*main_table(with_references(report), probes))
    tasks = report["options"].get("tasks", list(probes))
    asked = {c.title for name, probe in probes.items() if name in tasks for c in probe.columns(report["options"])}
    return table, [title for title in hidden if title in asked]


def without_empty_columns(header: list[str], rows: list[list[str]]) -> tuple[Table, list[str]]:
    """The table less its columns that hold "-" in every row (the first column always stays), and their titles."""
    empty = [i for i in range(1, len(header)) if all(row[i] == "-" for row in rows)]
    kept = [i for i in range(len(header)) if i not in empty]
    return ([header[i] for i in kept], [[row[i] for i in kept] for row in rows]), [header[i] for i in empty]


def results_notes(report: Report, hidden: Sequence[str]) -> str:
    """What report.md says under the results table: the reference rows, and the columns left out."""
    notes = []
    if "time" in report.get("references", {}):
        notes.append("time only (reference): the same probes on each frame's position t/T alone, without its "
                     "pixels: what an embedding has to beat to show it learnt more than the time in the video "
                     "(its Kendall's tau is 1 by construction).")
    if hidden:
        notes.append(f"Not shown, no number in any row: {', '.join(hidden)}.")
    return "".join(f"\n{note}\n" for note in notes)


def per_action_table(report: Report, probes: Registry = PROBES) -> Table:
    numbers = _number_columns(report["options"], probes)
    rows = [[action, str(values["train_videos"]), str(values["val_videos"]), *(c.cell(values) for c in numbers)]
            for action, values in report["per_action"].items()]
    return ["Action", "Train videos", "Val videos", *(c.title for c in numbers)], rows


def per_action_comparison(reports: Sequence[Report]) -> Table:
    """Classification per action and run, laid out like the supplement's Table 5 (per activity)."""
    fractions = _merged_options(reports)["fractions"]
    actions = sorted({action for report in reports for action in report["per_action"]})
    rows = [[action, run_label(report), *(percent(accuracy_at(report["per_action"].get(action, {}), f))
                                          for f in fractions)]
            for action in actions for report in reports]
    return ["Action", "Run", *(f"Classification {f}" for f in fractions)], rows


def text(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(cells[i]) for cells in [header, *rows]) for i in range(len(header))]
    lines = [header, ["-" * w for w in widths], *rows]
    return "\n".join("  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths)))
                     for cells in lines) + "\n"


def report_markdown(report: Report, probes: Registry = PROBES) -> str:
    """The whole report.md: provenance, main table, the default probes' sections, per action, the other
    probes' sections, skips, protocol."""
    sections = {default: [s for probe in probes.values() if probe.default == default and (s := probe.section(report))]
                for default in (True, False)}
    table, hidden = results_table(report, probes)
    parts = [f"# Evaluation: {run_label(report)}\n", _provenance(report, probes),
             "## Results (unweighted mean over actions)\n", markdown(*table) + results_notes(report, hidden),
             *sections[True]]
    if len(report["per_action"]) > 1:
        parts += ["## Per action\n", markdown(*without_empty_columns(*per_action_table(report, probes))[0])]
    parts += sections[False]
    if report["skipped"]:
        parts += ["## Skipped\n", "\n".join(f"- {line}" for line in skip_lines(report)) + "\n"]
    return "\n".join([*parts, "## Protocol\n", _protocol(report["options"], probes)])


def skip_lines(report: Report) -> list[str]:
    """One line per skipped task and reason: "task (actions): reason", or "task (every action): reason"."""
    return by_reason([(skip["task"], skip["reason"], skip["action"]) for skip in report["skipped"]],
                     len(report["per_action"]))


def _provenance(report: Report, probes: Registry) -> str:
    attrs, o = report["attrs"], report["options"]
    background = "kept as a class (with background)" if o["background"] == "keep" else "dropped (without background)"
    by_rank = sorted(probes.values(), key=lambda probe: probe.settings_rank)
    settings = [f"background: {background}", *(text for probe in by_rank if (text := probe.provenance(o)))]
    lines = [f"- {name}: `{attrs.get(name, '?')}`"
             for name in ("embedder", "objective", "step", "checkpoint", "feature_set", "fingerprint")]
    if identity_kind(attrs):
        lines.append(f"- reference row: {objective_label(report)} (`{option_name('identity')} {identity_kind(attrs)}`)")
    lines += [f"- embeddings: `{report['file']}`; videos: {report['videos']['train']} train, "
              f"{report['videos']['val']} val, {report['results']['actions']} action(s)",
              f"- {'; '.join(settings)}"]
    return "\n".join(lines) + "\n"


def _protocol(options: Report, probes: Registry) -> str:
    general = ("- Every probe runs per action on that action's videos; headline numbers are unweighted means over "
               "actions.")
    return "\n".join([general, *(line for probe in probes.values() if (line := probe.protocol(options)))]) + "\n"
