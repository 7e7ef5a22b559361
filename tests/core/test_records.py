"""Per-frame flags derived from a labelled timeline."""
from __future__ import annotations

import numpy as np
import pytest

from vava.core.records import FLAG_BACKGROUND as B
from vava.core.records import FLAG_OUT_OF_ORDER as O
from vava.core.records import FLAG_REPEATED as R
from vava.core.records import frame_flags


def timeline(*segments: tuple[int, int]) -> np.ndarray:
    """Labels from (label, frames) segments."""
    return np.concatenate([np.full(n, label) for label, n in segments])


def test_swapped_and_repeated_phases_with_background() -> None:
    # procedure order 0, 2, 1, 3, 1 (label 4 = background), with a pause inside the phase-2 segment
    labels = timeline((4, 2), (0, 3), (2, 2), (4, 1), (2, 1), (1, 3), (3, 2), (1, 2), (4, 2))
    expected = [B, B, 0, 0, 0, O, O, B, O, O, O, O, 0, 0, R, R, B, B]
    flags = frame_flags(labels, background_label=4)
    assert flags.dtype == np.uint8 and flags.tolist() == expected


@pytest.mark.parametrize(
    ("order", "expected"),
    [
        ([0, 1, 3], [0, 0, 0]),                 # an omitted phase flags nothing
        ([0, 3, 2, 1, 4], [0, O, O, O, 0]),     # a non-adjacent swap: everything between is inverted too
        ([0, 1, 2, 1, 3], [0, 0, 0, R, 0]),     # a repeat alone: the later phases are in order
        ([1, 0, 1, 0], [O, O, R, R]),
    ],
)
def test_segment_flags(order: list[int], expected: list[int]) -> None:
    labels = timeline(*((phase, 2) for phase in order))
    assert frame_flags(labels, background_label=9).tolist() == np.repeat(expected, 2).tolist()


def test_unknown_frames_are_skipped_and_no_background_label() -> None:
    labels = np.array([0, -1, 0, 2, -1, 1])
    assert frame_flags(labels, background_label=None).tolist() == [0, 0, 0, O, 0, O]
    assert frame_flags(np.array([3, 3]), background_label=3).tolist() == [B, B]
