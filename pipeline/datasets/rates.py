"""The frame rate of videos whose files store none (frame folders, TFRecord shards): the `fps` option, or
the rate the adapter assumes, which `vava data info` then notes."""
from __future__ import annotations

import math

from vava.core.errors import VavaError
from vava.pipeline.datasets.notes import note


def frame_rate(given: str | None, assumed: float, dataset: str, why: str) -> float:
    """`given` (the text of `--dataset-option fps`) as a positive number, else `assumed`, noted with `why`."""
    if given is None:
        note(f"{dataset}: frame rate {assumed:g} fps assumed ({why}); set it with --dataset-option fps=FPS")
        return assumed
    try:
        fps = float(given)
    except ValueError:
        fps = math.nan
    if not 0 < fps < math.inf:
        raise VavaError(f"--dataset-option fps={given}: must be a positive number of frames per second")
    return fps
