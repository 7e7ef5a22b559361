"""Per-frame labels from segment annotations (in seconds or in frames), with background between segments."""
from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from vava.core.errors import VavaError


def segment_labels(segments: Sequence[tuple[float, float, int]], num_frames: int, background: int,
                   frames_per_unit: float = 1.0, where: str = "segments") -> np.ndarray:
    """One label per frame: frames floor(start * f) .. floor(end * f) (inclusive) take the segment's
    phase, every other frame `background` (f = `frames_per_unit`: the fps for times in seconds, 1 for
    frame numbers).

    A later segment overrides an earlier one where they overlap; parts outside the video are cut off.
    A segment with end < start, or a negative or non-finite time, is refused naming `where`.
    """
    labels = np.full(num_frames, background, dtype=np.int64)
    for start, end, phase in segments:
        if not (math.isfinite(start) and math.isfinite(end)) or start < 0 or end < start:
            raise VavaError(f"{where}: segment [{start}, {end}] is not a valid interval (0 <= start <= end)")
        # capped at the video's end first: 1e308 s times the fps is inf, which has no floor
        first, last = (math.floor(min(time * frames_per_unit, num_frames)) for time in (start, end))
        labels[first:last + 1] = phase
    return labels
