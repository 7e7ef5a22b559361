"""The generic folder format: `ROOT/manifest.jsonl`, one JSON object per video.

Keys: `id`, `path` (relative to ROOT), `split` (train/val/test), `action`, optional `labels` (per-frame
ints; without them the video is unlabelled), `phases` (names, indexed by label), `fps`, `background_label`, `flags` (per-frame bit masks of
`vava.core.records.FRAME_FLAGS`).

The manifest is UTF-8 (a leading byte-order mark, as some editors write, is accepted and ignored).
Video paths must stay inside ROOT, symlinks resolved, unless the caller allows otherwise.
"""
from __future__ import annotations

import codecs
import json
import math
import reprlib
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from vava.core.errors import VavaError, quoted
from vava.core.files import atomic_write, check_confined, open_regular
from vava.core.records import (
    FRAME_FLAGS,
    MAX_FLAGS,
    MAX_FRAMES,
    MAX_LABEL,
    SPLITS,
    UNKNOWN_LABEL,
    VideoRecord,
    check_video_id,
)
from vava.pipeline.datasets.adapter import Dataset, DatasetOptions

MANIFEST_NAME = "manifest.jsonl"
MAX_LINE_BYTES = 64 * 2**20  # far above MAX_FRAMES labels; guards against reading a huge blob whole
_REQUIRED = ("id", "path", "split", "action")
_OPTIONAL = ("labels", "phases", "fps", "background_label", "flags")


def load_folder(root: str | Path, options: DatasetOptions = DatasetOptions(), *,
                allow_outside_root: bool = False) -> list[VideoRecord]:
    """Read and validate `ROOT/manifest.jsonl`; raise `VavaError` naming the line and video. The format takes
    no `options`.

    A video path that leads outside ROOT (absolute, `..`, or through a symlink) is refused unless
    `allow_outside_root`.
    """
    root = Path(root)
    manifest = root / MANIFEST_NAME
    if not root.is_dir():
        raise VavaError(f"dataset root {root} is not a directory")
    if not manifest.exists():
        raise VavaError(f"{manifest}: missing (the folder format needs a {MANIFEST_NAME}, see README)")
    confined_to = None if allow_outside_root else root.resolve()
    records: list[VideoRecord] = []
    seen: dict[str, int] = {}
    for lineno, line in _manifest_lines(manifest):
        where = f"{manifest}:{lineno}"
        try:
            entry = json.loads(line, object_pairs_hook=lambda pairs, where=where: _unique_keys(pairs, where))
        except json.JSONDecodeError as err:
            raise VavaError(f"{where}: not valid JSON ({err.msg})") from None
        except RecursionError:
            raise VavaError(f"{where}: not valid JSON (nested too deeply)") from None
        record = _parse_entry(entry, root, confined_to, where)
        if record.id in seen:
            raise VavaError(f"{where}: video {quoted(record.id)}: duplicate id (first on line {seen[record.id]})")
        seen[record.id] = lineno
        records.append(record)
    if not records:
        raise VavaError(f"{manifest}: no videos listed")
    return records


def _unique_keys(pairs: list[tuple[str, object]], where: str) -> dict[str, object]:
    """A JSON object of the manifest; a key given twice is refused (`json` would keep the last one silently)."""
    entry = dict(pairs)
    if len(entry) < len(pairs):
        seen: set[str] = set()
        twice = next(key for key, _ in pairs if key in seen or seen.add(key))
        raise VavaError(f"{where}: key {quoted(twice)} is given twice (which one counts is ambiguous)")
    return entry


def _manifest_lines(manifest: Path) -> Iterator[tuple[int, str]]:
    """(line number, text) of each non-blank line; one-line errors for over-long or non-UTF-8 lines."""
    with open_regular(manifest) as handle:
        for lineno, raw in enumerate(iter(lambda: handle.readline(MAX_LINE_BYTES + 1), b""), start=1):
            where = f"{manifest}:{lineno}"
            if len(raw) > MAX_LINE_BYTES:
                raise VavaError(f"{where}: line longer than {MAX_LINE_BYTES // 2**20} MiB")
            if lineno == 1:
                raw = raw.removeprefix(codecs.BOM_UTF8)
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as err:
                raise VavaError(f"{where}: not UTF-8 text (byte 0x{raw[err.start]:02x} at column {err.start + 1}); "
                                "save the manifest as UTF-8") from None
            if line.strip():
                yield lineno, line


def _parse_entry(entry: object, root: Path, confined_to: Path | None, where: str) -> VideoRecord:
    if not isinstance(entry, dict):
        raise VavaError(f"{where}: expected a JSON object, got {type(entry).__name__}")
    missing = [key for key in _REQUIRED if key not in entry]
    name = entry.get("id", "?")
    if missing:
        raise VavaError(f"{where}: video {quoted(name)}: missing key(s) {', '.join(missing)}")
    unknown = sorted(set(entry) - set(_REQUIRED) - set(_OPTIONAL))
    if unknown:
        raise VavaError(f"{where}: video {quoted(name)}: unknown key(s) {', '.join(unknown)}")
    video_id = check_video_id(entry["id"], where)
    where = f"{where}: video {quoted(video_id)}"
    if entry["split"] not in SPLITS:
        raise VavaError(f"{where}: unknown split {quoted(entry['split'])} (use one of {', '.join(SPLITS)})")
    action = entry["action"]
    if not isinstance(action, str) or not action:
        raise VavaError(f"{where}: action must be a non-empty string, got {quoted(action)}")
    phases = _parse_phases(entry.get("phases", []), where)
    labels = _parse_labels(entry["labels"], phases, where) if "labels" in entry else None
    if labels is None and "flags" in entry:
        raise VavaError(f"{where}: flags need labels (one flag per labelled frame)")
    return VideoRecord(
        id=video_id,
        path=resolve_video_path(entry["path"], root, confined_to, where),
        split=entry["split"],
        action=action,
        labels=labels,
        phases=phases,
        fps=_parse_fps(entry.get("fps"), where),
        background_label=_parse_background(entry.get("background_label"), phases, where),
        confined_to=confined_to,
        flags=_parse_flags(entry.get("flags"), 0 if labels is None else len(labels), where),
    )


def resolve_video_path(value: object, root: Path, confined_to: Path | None, where: str) -> Path:
    """The resolved video path; refused when it leads outside `confined_to` (when set)."""
    if not isinstance(value, str) or not value:
        raise VavaError(f"{where}: path must be a non-empty string (relative to the dataset root), "
                        f"got {reprlib.repr(value)}")
    if "\0" in value:
        raise VavaError(f"{where}: path {quoted(value)} contains a NUL byte")
    try:
        path = (root / value).resolve()
    except (OSError, RuntimeError) as err:  # RuntimeError: a symlink loop
        raise VavaError(f"{where}: path {quoted(value)} cannot be resolved ({err})") from None
    return check_confined(path, confined_to, f"{where}: path {quoted(value)}")


def _parse_labels(labels: object, phases: tuple[str, ...], where: str) -> np.ndarray:
    if not isinstance(labels, list) or not all(isinstance(x, int) and not isinstance(x, bool) for x in labels):
        raise VavaError(f"{where}: labels must be a list of integers")
    if not labels:
        raise VavaError(f"{where}: labels are empty (zero-frame video)")
    if len(labels) > MAX_FRAMES:
        raise VavaError(f"{where}: {len(labels)} labels, more than the {MAX_FRAMES} frames a video may have")
    # Range checks on the Python ints, before numpy: an int beyond int64 would not convert.
    lowest, highest = min(labels), max(labels)
    if lowest < UNKNOWN_LABEL:
        raise VavaError(f"{where}: labels must be >= {UNKNOWN_LABEL} (-1 = unknown)")
    if highest > MAX_LABEL:
        raise VavaError(f"{where}: label {highest} is above the largest allowed, {MAX_LABEL}")
    if phases and highest >= len(phases):
        raise VavaError(f"{where}: label {highest} has no name in phases ({len(phases)} given)")
    return np.asarray(labels, dtype=np.int64)


def _parse_flags(flags: object, frames: int, where: str) -> np.ndarray | None:
    """Per-frame bit masks, one per label; each a sum of the `FRAME_FLAGS` bits."""
    if flags is None:
        return None
    if not isinstance(flags, list) or not all(isinstance(x, int) and not isinstance(x, bool) for x in flags):
        raise VavaError(f"{where}: flags must be a list of integers (one bit mask per frame)")
    if len(flags) != frames:
        raise VavaError(f"{where}: {len(flags)} flags for {frames} labels (give one per frame)")
    bad = next((x for x in flags if not 0 <= x <= MAX_FLAGS), None)
    if bad is not None:
        bits = ", ".join(f"{name}={bit}" for name, bit in FRAME_FLAGS.items())
        raise VavaError(f"{where}: flag {bad} is not a sum of the flag bits ({bits}), i.e. 0..{MAX_FLAGS}")
    return np.asarray(flags, dtype=np.uint8)


def _parse_phases(phases: object, where: str) -> tuple[str, ...]:
    if not isinstance(phases, list) or not all(isinstance(p, str) for p in phases):
        raise VavaError(f"{where}: phases must be a list of names (strings), got {type(phases).__name__}")
    if len(phases) > MAX_LABEL + 1:
        raise VavaError(f"{where}: {len(phases)} phases, more than the {MAX_LABEL + 1} allowed")
    return tuple(phases)


def _parse_fps(fps: object, where: str) -> float | None:
    if fps is None:
        return None
    if isinstance(fps, bool) or not isinstance(fps, (int, float)) or not 0 < fps < math.inf:
        raise VavaError(f"{where}: fps must be a positive number, got {quoted(fps)}")
    return float(fps)


def _parse_background(background: object, phases: tuple[str, ...], where: str) -> int | None:
    if background is None:
        return None
    if isinstance(background, bool) or not isinstance(background, int):
        raise VavaError(f"{where}: background_label must be an integer, got {quoted(background)}")
    highest = len(phases) - 1 if phases else MAX_LABEL
    if not 0 <= background <= highest:
        raise VavaError(f"{where}: background_label {background} is out of range (0..{highest})")
    return background


def write_manifest(root: str | Path, entries: list[dict]) -> Path:
    """Write `entries` (dicts with the keys above) as ROOT/manifest.jsonl."""
    path = Path(root) / MANIFEST_NAME
    return atomic_write(path, "".join(json.dumps(entry, separators=(",", ":")) + "\n" for entry in entries))


def write_fixture(out: str | Path) -> None:
    """A tiny synthetic dataset in the folder format (`vava.pipeline.datasets.synthetic.write_fixture`)."""
    from vava.pipeline.datasets.synthetic import write_fixture as write_synthetic  # it writes through this module

    write_synthetic(out)


DATASET = Dataset("folder", "the generic folder format: manifest.jsonl + videos or frame folders", load_folder,
                  write_fixture)
