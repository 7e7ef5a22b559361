"""Per-frame flags derived from a labelled timeline; video ids and the names they are stored under."""
from __future__ import annotations

import re

import numpy as np
import pytest

from vava.core.errors import VavaError
from vava.core.records import FLAG_BACKGROUND as B
from vava.core.records import FLAG_OUT_OF_ORDER as O
from vava.core.records import FLAG_REPEATED as R
from vava.core.records import check_video_id, frame_flags, stored_name, video_id_of


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


@pytest.mark.parametrize(("video_id", "name"), [
    ("__9c5VYjqsw", "%5F_9c5VYjqsw"),    # a real YouTube id: zarr reserves names starting with "__"
    ("%5F_9c5VYjqsw", "%255F_9c5VYjqsw"),  # so that an id spelled like an escaped name stays apart
    ("_9c5VYjqsw", "_9c5VYjqsw"), ("0001_squat", "0001_squat"), ("a__b%", "a__b%"),  # unchanged: no escape needed
])
def test_stored_names_are_safe_and_map_back_to_their_id(video_id: str, name: str) -> None:
    assert check_video_id(video_id, "here") == video_id
    assert stored_name(video_id) == name and video_id_of(name) == video_id
    assert not name.startswith(("__", "."))


@pytest.mark.parametrize("name", ["__x", "%5Fx", "%zz", "%41"])
def test_a_name_no_id_is_stored_under_maps_to_none(name: str) -> None:
    assert video_id_of(name) is None


@pytest.mark.parametrize(("video_id", "message"), [
    ("", "video id '' must be non-empty, contain no '/' and not start with '.'"),
    (".", "video id '.' must be non-empty"), ("..", "video id '..' must be non-empty"),
    (".hidden", "not start with '.'"), ("a/b", "contain no '/'"), ("a\\b", "must be a plain name, without '/' or '\\'"),
    ("a\x00b", "contains a control character"), ("a\nb", "contains a control character"),
    ("zarr.json", "is a reserved name"),
    ("__" + "x" * 247, "is 249 bytes long (at most 248: it names a folder and a lock file in the cache)"),
])
def test_unsafe_ids_are_still_refused(video_id: str, message: str) -> None:
    with pytest.raises(VavaError, match=re.escape(message)):
        check_video_id(video_id, "here")
    assert check_video_id("__" + "x" * 246, "here")  # 248 bytes: its stored name is 250
