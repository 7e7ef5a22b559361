"""The frame rate of videos whose files store none (frame folders, TFRecord shards): the `fps` option, or
the rate the adapter assumes, which `vava data info` then notes."""
from __future__ import annotations

from typing import Any

from vava.core.validation import Rule, is_real
from vava.pipeline.datasets.adapter import option
from vava.pipeline.datasets.notes import note

RATE = Rule(lambda fps: fps is None or (is_real(fps) and fps > 0), "a positive number of frames per second",
            lambda _: "must be a positive number of frames per second")


def fps_option(help: str) -> Any:
    """The `fps` option of an adapter: a positive rate, or None (the default) for the rate it assumes."""
    return option(RATE, None, help)


def frame_rate(given: float | None, assumed: float, dataset: str, why: str) -> float:
    """`given` (the `fps` option), else `assumed`, noted with `why`."""
    if given is None:
        note(f"{dataset}: frame rate {assumed:g} fps assumed ({why}); set it with --dataset-option fps=FPS")
        return assumed
    return float(given)
