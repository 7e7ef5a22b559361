"""How many frames an extraction caches of a video, from its metadata alone (for `--dry-run` and the
progress bar's total)."""
from __future__ import annotations

import numpy as np

from vava.core.decode import kept_mask
from vava.core.errors import VavaError
from vava.core.records import VideoRecord
from vava.core.videoio import probe_video


def kept_frames(record: VideoRecord, target_fps: float | None) -> int:
    """Frames of `record` an extraction would cache: probed, resampled and masked like the decoder does
    (the stream's rate when the file has one, else the record's). A video stored as one record of a
    container file (`member`, e.g. a TFRecord shard) is not probed: it has one label per frame."""
    if record.member is None:
        frames, fps = probe_video(record.path)
    elif record.labels is not None:
        frames, fps = record.labels.shape[0], None
    else:
        raise VavaError(f"{record.path}: record at byte {record.member} has no labels to count its frames by")
    source_fps = fps or record.fps
    if target_fps is not None and not source_fps:
        raise VavaError(f"frame rate unknown, cannot resample to {target_fps} fps (give `fps` in the manifest)")
    kept = kept_mask(frames, source_fps, target_fps)
    if record.keep is not None:
        kept[: record.keep.shape[0]] &= record.keep[:frames]
    return int(np.count_nonzero(kept))


def planned_frames(records: list[VideoRecord], target_fps: float | None) -> int:
    """The frames an extraction of `records` caches in all; a video that cannot be probed counts 0 (its
    extraction fails or finds its count when decoded)."""
    total = 0
    for record in records:
        try:
            total += kept_frames(record, target_fps)
        except VavaError:
            continue
    return total
