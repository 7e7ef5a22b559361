"""`vava evaluate`: every probe on an embeddings.h5, as one JSON-ready dict, report.json and report.md."""
from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from pathlib import Path

import faiss
import sklearn

from vava.core.embeddings_file import EmbeddingsFile, identity_kind, load_embeddings, time_only_file
from vava.core.errors import VavaError
from vava.core.report_file import REPORT_JSON, load_report, write_report_files
from vava.stages.evaluate import tables
from vava.stages.evaluate.options import EvalOptions
from vava.stages.evaluate.probes import PROBES, Registry
from vava.stages.evaluate.probes.base import Action, Probe
from vava.stages.evaluate.probes.retrieval import faiss_device
from vava.stages.evaluate.skip import ProbeSkipped


def evaluate_embeddings(path: str | Path, probes: Registry = PROBES, time_reference: bool = True,
                        **options: object) -> dict[str, object]:
    """Run the probes of `options["tasks"]` on the embeddings file; `options` are EvalOptions' fields.

    Each probe runs per action on that action's videos; the headline numbers are the unweighted
    means over actions. A probe the input cannot support is listed under "skipped" with the reason.
    With `time_reference` (unless the file is itself time only) the same probes also run on each frame's
    time alone, t/T, into `references["time"]`: the row a useful embedding has to beat.
    """
    o = EvalOptions(probes, **options)
    selected = o.selected()
    data = load_embeddings(path, o.background)
    _check_splits(data, selected)
    report = {
        "file": str(data.path), "attrs": data.attrs, "options": o.as_dict(), "defaults": EvalOptions(probes).as_dict(),
        "software": {"scikit-learn": sklearn.__version__, "faiss": faiss.__version__,
                     "faiss_device": faiss_device(o.device) if "retrieval" in selected else None},
        "videos": {split: len(data.split(split)) for split in ("train", "val")},
        **_run_probes(data, selected, o),
        "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
    }
    if time_reference and identity_kind(data.attrs) != "time":
        report["references"] = {"time": _run_probes(time_only_file(path, o.background), selected, o)}
    return report


def _run_probes(data: EmbeddingsFile, selected: Registry, o: EvalOptions) -> dict[str, object]:
    """Every selected probe on every action of `data`: {"results", "per_action", "skipped"}."""
    instances = {name: probe(o) for name, probe in selected.items()}
    running = sorted(instances.values(), key=lambda probe: probe.rank)
    per_action, skipped = {}, []
    for action in data.actions():
        videos = [v for v in data.videos if v.action == action]
        per_action[action], skips = _probe_action(
            Action([v for v in videos if v.split == "train"], [v for v in videos if v.split == "val"]), running)
        skipped += [{"action": action, **skip} for skip in skips]
    results = {"actions": len(per_action),
               **{name: probe.aggregate(list(per_action.values())) for name, probe in instances.items()}}
    return {"results": results, "per_action": per_action, "skipped": skipped}


def _probe_action(action: Action, running: Sequence[Probe]) -> tuple[dict[str, object], list[dict[str, str]]]:
    """One action's values (every probe's, merged) and the probes it skipped, with the reason."""
    values: dict[str, object] = {"train_videos": len(action.train), "val_videos": len(action.val)}
    skipped = []
    for probe in running:
        try:
            values.update(probe.attempt(action))
        except ProbeSkipped as skip:
            skipped.append({"task": probe.name, "reason": str(skip)})
    return values, skipped


def _check_splits(data: EmbeddingsFile, selected: Registry) -> None:
    """Every action needs val videos, and train videos too when a train-based task is asked for."""
    needs_train = sorted(name for name, probe in selected.items() if probe.needs_train)
    for action in data.actions():
        for split in ("val", "train") if needs_train else ("val",):
            if not any(v.action == action and v.split == split for v in data.videos):
                needed = ", ".join(needs_train) if split == "train" else "every probe"
                raise VavaError(f"{data.path}: split {split!r} has no videos of action {action!r} "
                                f"({needed} need it); the file holds splits {data.attrs.get('splits', '?')}")


def write_report(run_dir: str | Path, report: dict[str, object], probes: Registry = PROBES,
                 tag: str = "") -> tuple[Path, Path]:
    """Write report.json and report.md (its tables) into `run_dir`, named with a checkpoint's `tag`
    (report-best.json) unless it is ""; return both paths."""
    return write_report_files(run_dir, report, tables.report_markdown(report, probes), tag)


def load_comparable_report(path: str | Path) -> dict[str, object]:
    """A report.json (or the one in a run folder), checked to have what the comparison tables read."""
    path = Path(path)
    path = path / REPORT_JSON if path.is_dir() else path
    return check_comparable_report(load_report(path), str(path))


def check_comparable_report(report: object, where: str) -> dict[str, object]:
    """`report` if it has what the comparison tables read; `VavaError` naming `where` otherwise."""
    try:  # a report that makes its own rows, with numeric columns, makes them beside any other
        tables.main_table([report], with_run_details=True)
        tables.per_action_comparison([report])
        numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool)
                      for key in ("fractions", "ks") for v in report["options"][key])
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        raise VavaError(f"{where}: not a vava report ({type(error).__name__}: {error})") from None
    if not numeric:
        raise VavaError(f"{where}: not a vava report (options.fractions and options.ks must hold numbers)")
    return report


def compare_reports(reports: Sequence[dict[str, object]], probes: Registry = PROBES) -> str:
    """One markdown table, one row per run, laid out like the VAVA supplement's Tables 1-2."""
    if not reports:
        raise VavaError("compare: give at least one report")
    return tables.markdown(*tables.main_table(reports, probes, with_run_details=True))


def render_text(report: dict[str, object], probes: Registry = PROBES) -> str:
    """The main table of one report (with its reference rows, without empty columns) as aligned plain text."""
    table, hidden = tables.results_table(report, probes)
    return tables.text(*table) + (f"not shown, no number in any row: {', '.join(hidden)}\n" if hidden else "")
