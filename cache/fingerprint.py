"""Content fingerprints: a stable hash of everything that determines a feature set."""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any, NamedTuple

from vava.cache.inputs import FeatureInputs, FeatureSettings
from vava.core.records import VideoRecord

FORMAT_VERSION = 2  # 2: per-chunk CRC-32C checksums and recorded file sizes


def stable_hash(obj: Any) -> str:
    """SHA-256 (hex) of the canonical JSON form of `obj`."""
    text = json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def source_identity(path: Path) -> dict[str, Any]:
    """Size and modification time of a video file, or of every file in a frame folder.

    The absolute path is left out on purpose: a dataset moved with its timestamps keeps its
    fingerprint. A missing file is recorded as such (its extraction then fails on its own).
    """
    if path.is_dir():
        entries = sorted(os.scandir(path), key=lambda e: e.name)
        stats = [(e.name, e.stat().st_size, e.stat().st_mtime_ns) for e in entries if e.is_file()]
        return {"kind": "frames", "name": path.name, "files": len(stats), "digest": stable_hash(stats)}
    if path.is_file():
        stat = path.stat()
        return {"kind": "file", "name": path.name, "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}
    return {"kind": "missing", "name": path.name}


def video_inputs(record: VideoRecord) -> dict[str, Any]:
    """Everything about one video that its cached features and metadata depend on (`flags`, `keep` and
    `member` only when given, so videos without them keep the fingerprint they had before these existed)."""
    inputs = {
        "id": record.id,
        "source": source_identity(record.path),
        "split": record.split,
        "action": record.action,
        "labels": None if record.labels is None else stable_hash(record.labels.tolist()),
        "phases": list(record.phases),
        "fps": record.fps,
        "background_label": record.background_label,
    }
    if record.flags is not None:
        inputs["flags"] = stable_hash(record.flags.tolist())
    if record.keep is not None:
        inputs["keep"] = stable_hash(record.keep.tolist())
    if record.member is not None:
        inputs["member"] = record.member
    return inputs


class SetFingerprint(NamedTuple):
    """What identifies a feature set: its `fingerprint`, the `inputs` it is the hash of (stored readable), and the
    `members`: each video id's key, the hash of the fingerprint and the video's inputs, which its folder
    records, so that a video folder copied from another set (or another video) is told apart."""

    fingerprint: str
    inputs: FeatureInputs
    members: dict[str, str]


def feature_set_fingerprint(records: list[VideoRecord], settings: FeatureSettings) -> SetFingerprint:
    """The fingerprint, inputs and member keys of extracting `records` with `settings`.

    The fingerprint is 16 hex digits of the hash of the inputs as stored (`FeatureInputs.attrs`).
    """
    per_video = [video_inputs(r) for r in records]
    inputs = FeatureInputs(settings, num_videos=len(records), manifest_digest=stable_hash(per_video),
                           format_version=FORMAT_VERSION)
    fingerprint = stable_hash(inputs.attrs())[:16]
    members = {video["id"]: stable_hash([fingerprint, video])[:16] for video in per_video}
    return SetFingerprint(fingerprint, inputs, members)
