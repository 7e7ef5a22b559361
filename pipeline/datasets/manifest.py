"""`vava data manifest`: a folder-format manifest for a folder of your own videos.

Videos are the files of VIDEO_DIR with a video extension and its folders of JPEG/PNG frames; a
subfolder holding neither frames nor is itself a video is an action folder, whose videos take its
name as their action (VIDEO_DIR/<action>/<video>). A video's id is its file name without the
extension (a frame folder's: its name); ids must be unique.

Splits: a split file (`video_id split` per line, or CSV `video,split`), or a seeded share of each
action's videos in val. Labels: a CSV of segments `video,start,end,phase` (seconds) becomes per-frame
labels; phases are `background` (label 0, the frames between segments) then the phase names in order
of first appearance in the file. Videos without any segment row get no labels (unlabelled).
"""
from __future__ import annotations

import csv
import math
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vava.core.decode import FRAME_EXTENSIONS, frame_files, natural_key
from vava.core.errors import VavaError, quoted
from vava.core.files import has_control_character, is_inside
from vava.core.records import MAX_LABEL, SPLITS, check_video_id
from vava.core.videoio import probe_video
from vava.pipeline.datasets.annotation_files import read_text
from vava.pipeline.datasets.folder import MANIFEST_NAME, write_manifest
from vava.pipeline.datasets.segments import segment_labels

VIDEO_EXTENSIONS = (".mp4", ".m4v", ".mov", ".avi", ".mkv", ".webm", ".mpg", ".mpeg", ".wmv", ".flv", ".ts")
BACKGROUND = "background"
BACKGROUND_LABEL = 0
SEGMENT_HEADER = ["video", "start", "end", "phase"]

Segment = tuple[float, float, str, int]  # start s, end s, phase name, line number
# Kendall's tau and AP@K compare the val videos of an action with each other: fewer and they are skipped
MIN_VAL_VIDEOS = 2


@dataclass(frozen=True)
class FoundVideo:
    """A video of VIDEO_DIR: its id, path (as found, under VIDEO_DIR) and action."""

    id: str
    path: Path
    action: str


def find_videos(video_dir: str | Path, action: str | None = None) -> list[FoundVideo]:
    """The videos of `video_dir` (see the module docstring), sorted by action and natural id order.

    Videos directly in `video_dir` take `action`, else the folder's name. Hidden entries are skipped.
    """
    video_dir = Path(video_dir)
    if not video_dir.is_dir():
        raise VavaError(f"{video_dir}: not a folder")
    default = action or video_dir.resolve().name
    found = []
    for entry in _entries(video_dir):
        if _is_video(entry):
            found.append(_video(entry, default))
        elif entry.is_dir():
            found += [_video(sub, entry.name) for sub in _entries(entry) if _is_video(sub)]
    if not found:
        raise VavaError(f"{video_dir}: no videos found (files ending in {', '.join(VIDEO_EXTENSIONS)}, "
                        f"or folders of {'/'.join(FRAME_EXTENSIONS)} frames)")
    seen: dict[str, Path] = {}
    for video in found:
        if video.id in seen:
            raise VavaError(f"{video.path}: video id {video.id!r} is also the id of {seen[video.id]} "
                            "(ids are file names without extension; rename one)")
        seen[video.id] = video.path
    return sorted(found, key=lambda v: (v.action, natural_key(v.id)))


def _entries(folder: Path) -> list[Path]:
    return sorted((p for p in folder.iterdir() if not p.name.startswith(".")), key=lambda p: natural_key(p.name))


def _is_video(path: Path) -> bool:
    if path.is_dir():
        return bool(frame_files(path))
    return path.suffix.lower() in VIDEO_EXTENSIONS and path.is_file()


def _video(path: Path, action: str) -> FoundVideo:
    name = path.name if path.is_dir() else path.stem
    return FoundVideo(check_video_id(name, str(path)), path, action)


# -- splits --------------------------------------------------------------------------------
def read_split_file(path: str | Path, videos: list[FoundVideo]) -> dict[str, str]:
    """Each video's split from `path`: `video_id split` (whitespace) or `video,split` (CSV) per line.

    A header line `video,split`, blank lines and lines starting with `#` are skipped. Every found
    video must be listed, and every listed id must be a found video.
    """
    path = Path(path)
    known = {v.id for v in videos}
    splits: dict[str, str] = {}
    for lineno, fields in _split_rows(path):
        where = f"{path}:{lineno}"
        if len(fields) != 2:
            raise VavaError(f"{where}: expected 'video_id split' (or 'video,split'), got {len(fields)} field(s)")
        video_id, split = fields
        if split not in SPLITS:
            raise VavaError(f"{where}: unknown split {split!r} (use one of {', '.join(SPLITS)})")
        if video_id not in known:
            raise VavaError(f"{where}: video {video_id!r} is not among the videos found")
        if video_id in splits:
            raise VavaError(f"{where}: video {video_id!r} is listed twice")
        splits[video_id] = split
    missing = [v.id for v in videos if v.id not in splits]
    if missing:
        more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
        raise VavaError(f"{path}: no split for video(s) {', '.join(missing[:5])}{more}")
    return splits


def _split_rows(path: Path) -> Iterator[tuple[int, list[str]]]:
    for lineno, line in enumerate(read_text(path, "the --split-by file").splitlines(), start=1):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        fields = [f.strip() for f in text.split(",")] if "," in text else text.split()
        if lineno == 1 and fields == ["video", "split"]:
            continue
        yield lineno, fields


def seeded_splits(videos: list[FoundVideo], val_fraction: float, seed: int) -> dict[str, str]:
    """Per action, round(val_fraction * n) of its n videos in val (at most n - 1), the rest in train.

    The val videos are a permutation's first ones, drawn from a generator seeded with `seed` and the
    action's name, so an action's split depends on nothing else.
    """
    if not 0 <= val_fraction < 1:
        raise VavaError(f"--val-fraction: {val_fraction} is not in [0, 1)")
    splits = {}
    for action in dict.fromkeys(v.action for v in videos):
        ids = sorted((v.id for v in videos if v.action == action), key=natural_key)
        val = min(math.floor(val_fraction * len(ids) + 0.5), len(ids) - 1)
        order = np.random.default_rng([seed, zlib.crc32(action.encode())]).permutation(len(ids))
        chosen = set(order[:val].tolist())
        splits.update({video_id: "val" if i in chosen else "train" for i, video_id in enumerate(ids)})
    return splits


# -- segments ------------------------------------------------------------------------------
def read_segments(path: str | Path, videos: list[FoundVideo]) -> tuple[dict[str, list[Segment]], list[str]]:
    """The segments of each video in `path` (CSV `video,start,end,phase`, seconds) and the phase names:
    `background` first, then every phase in order of first appearance. A phase named `background` is
    the background label. Each row's interval is checked (0 <= start <= end, finite)."""
    path = Path(path)
    known = {v.id for v in videos}
    rows = csv.reader(read_text(path, "the --segments file").splitlines())
    header = [field.strip() for field in next(rows, [])]
    if header != SEGMENT_HEADER:
        raise VavaError(f"{path}:1: the header must be {','.join(SEGMENT_HEADER)}, got {','.join(header) or 'nothing'}")
    segments: dict[str, list[Segment]] = {}
    phases = [BACKGROUND]
    for lineno, row in enumerate(rows, start=2):
        if not any(field.strip() for field in row):
            continue
        where = f"{path}:{lineno}"
        if len(row) != 4:
            raise VavaError(f"{where}: expected 4 fields (video,start,end,phase), got {len(row)}")
        video_id, start, end, phase = (field.strip() for field in row)
        if video_id not in known:
            raise VavaError(f"{where}: video {video_id!r} is not among the videos found")
        if not phase:
            raise VavaError(f"{where}: the phase name is empty")
        if has_control_character(phase):
            raise VavaError(f"{where}: the phase name {quoted(phase)} contains a control character")
        times = _seconds(start, where, "start"), _seconds(end, where, "end")
        if times[0] > times[1]:
            raise VavaError(f"{where}: end {end} is before start {start}")
        if phase not in phases:
            if len(phases) > MAX_LABEL:  # the folder format could not read the manifest back
                raise VavaError(f"{where}: phase {phase!r} would be phase {len(phases)}; a manifest holds at most "
                                f"{MAX_LABEL + 1} phases, background included")
            phases.append(phase)
        segments.setdefault(video_id, []).append((*times, phase, lineno))
    return segments, phases


def _seconds(text: str, where: str, name: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise VavaError(f"{where}: {name} {text!r} is not a number of seconds") from None
    if not (math.isfinite(value) and value >= 0):
        raise VavaError(f"{where}: {name} {text!r} must be a finite number of seconds >= 0")
    return value


# -- the manifest ---------------------------------------------------------------------------
def build_entries(videos: list[FoundVideo], root: Path, splits: dict[str, str],
                  segments: dict[str, list[Segment]] | None = None, phases: list[str] | None = None,
                  segments_file: Path | None = None) -> list[dict]:
    """One manifest entry per video (path relative to `root`, frames and fps probed), labelled from
    its segments when it has any."""
    entries = []
    for video in videos:
        frames, fps = probe_video(video.path)
        if frames == 0:
            raise VavaError(f"{video.path}: the video has no frames")
        entry = {"id": video.id, "path": video.path.resolve().relative_to(root).as_posix(),
                 "split": splits[video.id], "action": video.action}
        if fps is not None:
            entry["fps"] = fps
        rows = (segments or {}).get(video.id)
        if rows:
            if fps is None:
                raise VavaError(f"{segments_file}:{rows[0][3]}: video {video.id!r} is a frame folder, whose frame "
                                "rate is unknown; segments in seconds need it")
            _check_timeline(rows, frames, fps, f"{segments_file}", video.id)
            timeline = [(start, end, phases.index(phase)) for start, end, phase, _ in rows]
            labels = segment_labels(timeline, frames, BACKGROUND_LABEL, frames_per_unit=fps)
            entry.update(labels=labels.tolist(), phases=phases, background_label=BACKGROUND_LABEL)
        entries.append(entry)
    return entries


def _check_timeline(rows: list[Segment], frames: int, fps: float, path: str, video_id: str) -> None:
    """Refuse segments of a video that overlap or end past its last frame (by more than a frame's time):
    labelled anyway, the later one would win, or the segment be cut short, with no word."""
    ordered = sorted(rows)
    for (start, end, _, line), (later, later_end, _, later_line) in zip(ordered, ordered[1:]):
        if later < end:
            raise VavaError(f"{path}:{later_line}: segment {later:g}-{later_end:g} s of video {quoted(video_id)} "
                            f"overlaps the one on line {line} ({start:g}-{end:g} s)")
    start, end, _, line = max(rows, key=lambda row: row[1])
    if end > (frames + 1) / fps:
        raise VavaError(f"{path}:{line}: segment {start:g}-{end:g} s of video {quoted(video_id)} runs past its end "
                        f"({frames} frames at {fps:g} fps: {frames / fps:g} s)")


def write_video_manifest(video_dir: str | Path, out: str | Path, *, split_file: str | Path | None = None,
                         val_fraction: float = 0.2, seed: int = 0, segments_file: str | Path | None = None,
                         action: str | None = None, force: bool = False) -> list[dict]:
    """Find the videos of `video_dir`, write the manifest `out` (named manifest.jsonl; every video
    inside its folder), return its entries. An existing `out` is replaced only with `force`; it is
    written by create-and-rename, so a symlink there is replaced, never written through."""
    out = Path(out)
    if out.name != MANIFEST_NAME:
        raise VavaError(f"--out: {out} must be named {MANIFEST_NAME} (the folder format reads ROOT/{MANIFEST_NAME})")
    if (out.exists() or out.is_symlink()) and not force:
        raise VavaError(f"--out: {out} exists; pass --force to replace it")
    if not out.parent.is_dir():
        raise VavaError(f"--out: the folder {out.parent} does not exist")
    root = out.parent.resolve()
    videos = find_videos(video_dir, action)
    outside = next((v for v in videos if not is_inside(v.path, root)), None)
    if outside is not None:
        raise VavaError(f"{outside.path} is outside {root}, the manifest's folder (video paths are relative to it); "
                        f"write the manifest into the video folder: --out {Path(video_dir) / MANIFEST_NAME}")
    splits = (read_split_file(split_file, videos) if split_file is not None
              else seeded_splits(videos, val_fraction, seed))
    segments, phases = read_segments(segments_file, videos) if segments_file is not None else ({}, None)
    entries = build_entries(videos, root, splits, segments, phases,
                            None if segments_file is None else Path(segments_file))
    write_manifest(out.parent, entries)
    return entries


def few_val_videos(entries: list[dict]) -> dict[str, int]:
    """The actions of manifest `entries` with fewer than `MIN_VAL_VIDEOS` val videos, and how many they have."""
    counts = {entry["action"]: 0 for entry in entries}
    for entry in entries:
        counts[entry["action"]] += entry["split"] == "val"
    return {action: count for action, count in counts.items() if count < MIN_VAL_VIDEOS}
