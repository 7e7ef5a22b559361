"""Describing and verifying feature sets (`vava cache info` / `vava cache verify`)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from cache.store import FEATURE_DTYPE, FeatureSet, disk_usage


def describe(feature_set: FeatureSet) -> dict[str, Any]:
    """Counts, sizes and fingerprint inputs of a feature set."""
    videos = feature_set.videos(include_incomplete=True)
    complete = [v for v in videos if v.complete]
    frames = sum(v.num_frames for v in complete)
    frame_shape = feature_set.frame_shape(complete[0].id) if complete else None
    raw_bytes = frames * int(np.prod(frame_shape)) * np.dtype(FEATURE_DTYPE).itemsize if frame_shape else 0
    on_disk = disk_usage(feature_set.path)
    attrs = feature_set.attrs
    return {
        "path": str(feature_set.path),
        "fingerprint": feature_set.fingerprint,
        "created": attrs.get("created"),
        "dataset": attrs.get("dataset", {}),
        "videos_complete": len(complete),
        "videos_incomplete": len(videos) - len(complete),
        "frames": frames,
        "frame_shape": list(frame_shape) if frame_shape else None,
        "splits": {s: sum(v.split == s for v in complete) for s in sorted({v.split for v in complete})},
        "actions": sorted({v.action for v in complete}),
        "bytes_on_disk": on_disk,
        "bytes_raw_float16": raw_bytes,
        "compression_ratio": raw_bytes / on_disk if on_disk else None,
        "inputs": attrs.get("inputs", {}),
    }


@dataclass
class VerifyReport:
    checked: int = 0
    incomplete: list[str] = field(default_factory=list)
    damaged: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.incomplete and not self.damaged


def verify(feature_set: FeatureSet) -> VerifyReport:
    """Read every complete video in full and check its shape, dtype, values and labels."""
    report = VerifyReport()
    for video in feature_set.videos(include_incomplete=True):
        if not video.complete:
            report.incomplete.append(video.id)
            continue
        report.checked += 1
        try:
            problem = _check_video(feature_set, video.id, video.num_frames)
        except Exception as err:  # any read failure means damaged data, whatever zarr raised
            problem = f"unreadable ({type(err).__name__}: {err})"
        if problem:
            report.damaged[video.id] = problem
    return report


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
