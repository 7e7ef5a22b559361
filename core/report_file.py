"""The report artefact (RUN/report.json and RUN/report.md, or report-<tag>.json/.md for a checkpoint
other than the last): the only place that knows how they are written and read. `report.json` is
strict JSON (NaN and infinities become null)."""
from __future__ import annotations

import json
import math
from pathlib import Path

from vava.core.errors import VavaError
from vava.core.files import atomic_write, read_regular
from vava.core.run_folder import tagged_name

REPORT_JSON = "report.json"
REPORT_MD = "report.md"


def write_report_files(run_dir: str | Path, report: dict[str, object], markdown: str,
                       tag: str = "") -> tuple[Path, Path]:
    """Write `report` as report.json and `markdown` as report.md into `run_dir` (report-<tag>.json and
    report-<tag>.md for a checkpoint's `tag`, see `vava.core.run_folder.checkpoint_tag`); return both paths."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    json_path, md_path = run_dir / tagged_name(REPORT_JSON, tag), run_dir / tagged_name(REPORT_MD, tag)
    atomic_write(json_path, json.dumps(finite_json(report), indent=2) + "\n")
    atomic_write(md_path, markdown)
    return json_path, md_path


def load_report(path: str | Path) -> dict[str, object]:
    """A report.json, or the one inside a run folder."""
    path = Path(path)
    path = path / REPORT_JSON if path.is_dir() else path
    try:
        return json.loads(read_regular(path))
    except (OSError, ValueError) as error:
        raise VavaError(f"{path}: not a readable report ({error})") from None


def finite_json(value: object) -> object:
    """`value` with NaN/inf -> None at any depth, so what is written is strict JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: finite_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [finite_json(v) for v in value]
    return value
