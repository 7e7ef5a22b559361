"""The generic folder format: `ROOT/manifest.jsonl`, one JSON object per video.

Keys: `id`, `path` (relative to ROOT), `split` (train/val), `action`, `labels` (per-frame ints),
optional `phases` (names, indexed by label), `fps`, `background_label`.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from pipeline.datasets.record import SPLITS, UNKNOWN_LABEL, VideoRecord
from pipeline.errors import VavaError

MANIFEST_NAME = "manifest.jsonl"
_REQUIRED = ("id", "path", "split", "action", "labels")
_OPTIONAL = ("phases", "fps", "background_label")


def load_folder(root: str | Path) -> list[VideoRecord]:
    """Read and validate `ROOT/manifest.jsonl`; raise `VavaError` naming the line and video."""
    root = Path(root)
    manifest = root / MANIFEST_NAME
    if not root.is_dir():
        raise VavaError(f"dataset root {root} is not a directory")
    if not manifest.is_file():
        raise VavaError(f"{manifest}: missing (the folder format needs a {MANIFEST_NAME}, see README)")
    records: list[VideoRecord] = []
    seen: dict[str, int] = {}
    for lineno, line in enumerate(manifest.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{manifest}:{lineno}"
        try:
            entry = json.loads(line)
        except json.JSONDecodeError as err:
            raise VavaError(f"{where}: not valid JSON ({err.msg})") from None
        record = _parse_entry(entry, root, where)
        if record.id in seen:
            raise VavaError(f"{where}: video {record.id!r}: duplicate id (first on line {seen[record.id]})")
        seen[record.id] = lineno
        records.append(record)
    if not records:
        raise VavaError(f"{manifest}: no videos listed")
    return records


def _parse_entry(entry: object, root: Path, where: str) -> VideoRecord:
    if not isinstance(entry, dict):
        raise VavaError(f"{where}: expected a JSON object, got {type(entry).__name__}")
    missing = [key for key in _REQUIRED if key not in entry]
    name = entry.get("id", "?")
    if missing:
        raise VavaError(f"{where}: video {name!r}: missing key(s) {', '.join(missing)}")
    unknown = sorted(set(entry) - set(_REQUIRED) - set(_OPTIONAL))
    if unknown:
        raise VavaError(f"{where}: video {name!r}: unknown key(s) {', '.join(unknown)}")
    video_id = str(entry["id"])
    if not video_id or "/" in video_id or video_id.startswith((".", "__")):
        raise VavaError(f"{where}: video id {video_id!r} must be non-empty, contain no '/' and not start with '.' or '__'")
    if entry["split"] not in SPLITS:
        raise VavaError(f"{where}: video {video_id!r}: unknown split {entry['split']!r} (use one of {', '.join(SPLITS)})")
    labels = entry["labels"]
    if not isinstance(labels, list) or not all(isinstance(x, int) and not isinstance(x, bool) for x in labels):
        raise VavaError(f"{where}: video {video_id!r}: labels must be a list of integers")
    labels_arr = np.asarray(labels, dtype=np.int64)
    if labels_arr.size == 0:
        raise VavaError(f"{where}: video {video_id!r}: labels are empty (zero-frame video)")
    if (labels_arr < UNKNOWN_LABEL).any():
        raise VavaError(f"{where}: video {video_id!r}: labels must be >= {UNKNOWN_LABEL} (-1 = unknown)")
    phases = tuple(str(p) for p in entry.get("phases", ()))
    if phases and labels_arr.max() >= len(phases):
        raise VavaError(f"{where}: video {video_id!r}: label {labels_arr.max()} has no name in phases ({len(phases)} given)")
    fps = entry.get("fps")
    if fps is not None and (not isinstance(fps, (int, float)) or fps <= 0):
        raise VavaError(f"{where}: video {video_id!r}: fps must be a positive number, got {fps!r}")
    background = entry.get("background_label")
    if background is not None and not isinstance(background, int):
        raise VavaError(f"{where}: video {video_id!r}: background_label must be an integer")
    return VideoRecord(
        id=video_id,
        path=(root / str(entry["path"])).resolve(),
        split=entry["split"],
        action=str(entry["action"]),
        labels=labels_arr,
        phases=phases,
        fps=float(fps) if fps is not None else None,
        background_label=background,
    )


def write_manifest(root: str | Path, entries: list[dict]) -> Path:
    """Write `entries` (dicts with the keys above) as ROOT/manifest.jsonl."""
    path = Path(root) / MANIFEST_NAME
    path.write_text("".join(json.dumps(entry, separators=(",", ":")) + "\n" for entry in entries))
    return path
