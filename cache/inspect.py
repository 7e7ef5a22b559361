"""Listing, describing and verifying feature sets (`vava cache ls/info/verify`), and the checks
that keep damaged or partial feature sets out of extraction, training and embedding."""
from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from vava.cache.locks import video_lock
from vava.cache.store import FEATURE_DTYPE, CachedVideo, DamagedVideo, FeatureSet, disk_usage
from vava.core.errors import VavaError, option_name


def describe(feature_set: FeatureSet) -> dict[str, Any]:
    """Counts, sizes and fingerprint inputs of a feature set (`VavaError` when its inputs are damaged)."""
    inputs = feature_set.inputs.attrs()
    videos = feature_set.videos(include_incomplete=True)
    complete = [v for v in videos if v.complete]
    frames = sum(v.num_frames for v in complete)
    frame_shape = next(filter(None, (_frame_shape(feature_set, v.id) for v in complete)), None)
    raw_bytes = frames * int(np.prod(frame_shape)) * np.dtype(FEATURE_DTYPE).itemsize if frame_shape else 0
    on_disk = disk_usage(feature_set.path)
    attrs = feature_set.attrs
    return {
        "path": str(feature_set.path),
        "fingerprint": feature_set.fingerprint,
        "created": attrs.get("created"),
        "dataset": attrs.get("dataset", {}),
        "videos_complete": len(complete),
        "videos_incomplete": sum(not v.complete and not v.foreign for v in videos),
        "videos_unreadable": {v.id: v.problem for v in videos if v.problem and not v.foreign},
        "videos_foreign": [v.id for v in videos if v.foreign],
        "frames": frames,
        "frame_shape": list(frame_shape) if frame_shape else None,
        "splits": {s: sum(v.split == s for v in complete) for s in sorted({v.split for v in complete})},
        "actions": sorted({v.action for v in complete}),
        "bytes_on_disk": on_disk,
        "bytes_raw_float16": raw_bytes,
        "compression_ratio": raw_bytes / on_disk if on_disk else None,
        "inputs": inputs,
    }


LISTING_HEADER = ("path", "backbone/cut", "size", "weights", "videos done", "dataset root")


def listing_row(feature_set: FeatureSet) -> tuple[str, ...]:
    """A feature set as one row of `vava cache ls` (the columns of `LISTING_HEADER`)."""
    inputs = feature_set.inputs
    settings = inputs.settings
    done = sum(v.complete for v in feature_set.videos(include_incomplete=True))
    return (str(feature_set.path), f"{settings.backbone}/{settings.layer}", f"{settings.preprocessing.image_size}px",
            settings.weights[:24], f"{done}/{inputs.num_videos}",
            str(feature_set.attrs.get("dataset", {}).get("root", "")))


def _frame_shape(feature_set: FeatureSet, video_id: str) -> tuple[int, int, int] | None:
    try:
        return feature_set.frame_shape(video_id)
    except DamagedVideo:
        return None


@dataclass
class VerifyReport:
    checked: int = 0
    incomplete: list[str] = field(default_factory=list)
    damaged: dict[str, str] = field(default_factory=dict)
    unchecksummed: list[str] = field(default_factory=list)  # complete videos written before checksums
    foreign: list[str] = field(default_factory=list)  # folders that are none of the set's videos (ignored)

    @property
    def ok(self) -> bool:
        return not self.incomplete and not self.damaged and not self.foreign


def verify(feature_set: FeatureSet) -> VerifyReport:
    """Check every video: files as recorded, every checksum, shape, dtype, values and labels."""
    report = VerifyReport()
    for video in feature_set.videos(include_incomplete=True):
        if video.foreign:
            report.foreign.append(video.id)
            continue
        if video.problem:
            report.damaged[video.id] = video.problem
            continue
        if not video.complete:
            report.incomplete.append(video.id)
            continue
        report.checked += 1
        if not video.checksummed:
            report.unchecksummed.append(video.id)
        if problem := damage(feature_set, video, full=True):
            report.damaged[video.id] = problem
    return report


def damage(feature_set: FeatureSet, video: CachedVideo, full: bool) -> str | None:
    """What is wrong with a complete video, or None: its files against their record (a few
    `stat`s), and with `full` every byte read back and checked as in `verify`."""
    try:
        if problem := feature_set.file_problem(video.id):
            return f"unreadable ({problem})"
        return _check_video(feature_set, video.id, video.num_frames) if full else None
    except DamagedVideo as err:
        return f"unreadable ({err.problem})"


def drop_damaged(feature_set: FeatureSet, video_ids: list[str], full: bool) -> dict[str, str]:
    """Delete the damaged ones among the complete videos `video_ids`, so that they are extracted
    again; return their problems. See `damage` for `full`."""
    wanted = set(video_ids)
    damaged = {video.id: problem for video in feature_set.videos()
               if video.id in wanted and (problem := damage(feature_set, video, full))}
    if damaged:
        with feature_set.writing():
            for video_id in damaged:
                with video_lock(feature_set.path, video_id):
                    feature_set.remove_video(video_id)
    return damaged


def require_complete(feature_set: FeatureSet, allow_partial: bool) -> None:
    """Refuse a feature set holding fewer complete videos than its manifest listed, unless
    `allow_partial` (then warn on stderr)."""
    expected = feature_set.inputs.num_videos
    done = len(feature_set.videos())
    if done >= expected:
        return
    message = (f"{feature_set.path}: only {done} of {expected} videos are extracted "
               f"({expected - done} missing or incomplete)")
    if not allow_partial:
        raise VavaError(f"{message}; finish them with `vava extract`, or pass {option_name('allow_partial')} to use "
                        f"these {done}")
    print(f"warning: {message}; going on with them ({option_name('allow_partial')})", file=sys.stderr)


def _check_video(feature_set: FeatureSet, video_id: str, num_frames: int) -> str | None:
    features = feature_set.read(video_id)
    if features.dtype != np.dtype(FEATURE_DTYPE):
        return f"dtype {features.dtype}, expected {FEATURE_DTYPE}"
    if features.ndim != 4 or features.shape[0] != num_frames:
        return f"shape {features.shape}, expected ({num_frames}, C, H, W)"
    if not np.isfinite(features).all():
        return "non-finite values"
    labels = feature_set.labels(video_id)
    if labels.shape != (num_frames,):
        return f"{labels.shape[0]} labels for {num_frames} frames"
    return None
