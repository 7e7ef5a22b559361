"""Segment annotations -> per-frame labels (vava.pipeline.datasets.segments)."""
from __future__ import annotations

import pytest

from vava.core.errors import VavaError
from vava.pipeline.datasets.segments import segment_labels


def test_seconds_become_inclusive_frame_ranges_with_background_between() -> None:
    # at 10 fps: [0.25 s, 0.5 s] -> frames 2..5, [1.0 s, 1.12 s] -> frames 10..11
    labels = segment_labels([(0.25, 0.5, 0), (1.0, 1.12, 1)], 14, background=9, frames_per_unit=10)
    assert labels.tolist() == [9, 9, 0, 0, 0, 0, 9, 9, 9, 9, 1, 1, 9, 9]


def test_frame_numbers_later_segments_win_and_ends_are_cut() -> None:
    labels = segment_labels([(1, 3, 4), (3, 4, 5), (5, 99, 6)], 7, background=0)
    assert labels.tolist() == [0, 4, 4, 5, 5, 6, 6]


def test_times_far_past_the_end_are_cut_even_where_time_times_fps_overflows() -> None:
    labels = segment_labels([(0.2, 1e308, 1), (1e308, 1e308, 2)], 4, background=0, frames_per_unit=10)
    assert labels.tolist() == [0, 0, 1, 1]


@pytest.mark.parametrize("segment", [(3, 2, 0), (-1, 2, 0), (0, float("nan"), 0)])
def test_invalid_segments_are_refused_naming_where(segment: tuple) -> None:
    with pytest.raises(VavaError, match=r"^COIN.json: video x: segment \["):
        segment_labels([segment], 5, background=0, where="COIN.json: video x")
