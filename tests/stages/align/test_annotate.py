"""The aligned video's annotations (stages/align/annotate.py): captions with names and frame counters, the legend."""
from __future__ import annotations

import numpy as np

from vava.core.figures import phase_colours
from vava.stages.align.annotate import captions, legend, strip_height
from vava.stages.align.run import Clip, compose

PHASES = ("reach", "pour", "background")


def clip(name: str, frames: int, labels: list[int] | None) -> Clip:
    pixels = np.full((frames, 48, 64, 3), 40, dtype=np.uint8)
    return Clip(name, np.zeros((frames, 2), np.float32), pixels, 15.0,
                None if labels is None else np.asarray(labels), PHASES if labels else (), 2)


def test_captions_draw_each_text_once_and_index_it_per_frame() -> None:
    strips = captions(["A: v0 frame 1/3", "A: v0 frame 2/3", "A: v0 frame 1/3"], 120, 14)
    assert strips.shape == (3, 14, 120, 3) and strips.dtype == np.uint8
    assert strips[0].any() and np.array_equal(strips[0], strips[2]) and not np.array_equal(strips[0], strips[1])


def test_the_legend_shows_every_phase_colour_and_wraps_to_the_width() -> None:
    labels = np.array([0, 0, 1, 2])
    key = legend(labels, PHASES, 2, 400, 14)
    assert key.shape == (14, 400, 3)
    colours = {tuple(c) for c in np.round(phase_colours(np.array([0, 1, 2]), 2) * 255).astype(np.uint8)}
    assert colours <= {tuple(p) for p in key.reshape(-1, 3)}
    assert legend(labels, PHASES, 2, 50, 14).shape[0] == 3 * 14  # one entry a row when that is all that fits


def test_each_output_frame_names_both_videos_counts_frames_and_ends_with_the_legend() -> None:
    a, b = clip("v0", 4, [0, 0, 1, 2]), clip("clip.mp4", 6, None)
    shown = np.array([0, 2, 2, 5])
    video = compose(a, b, shown)
    line, key = strip_height(48), legend(a.labels, PHASES, 2, 128, strip_height(48))
    assert video.shape == (4, line + 48 + 4 + key.shape[0], 128, 3)
    head = video[:, :line]
    assert head[:, :, :64].any() and head[:, :, 64:].any()  # both halves captioned
    assert all(not np.array_equal(head[t, :, :64], head[t + 1, :, :64]) for t in range(3))  # A's counter runs
    assert np.array_equal(head[1, :, 64:], head[2, :, 64:])  # B shows frame 3/6 twice: the same caption
    assert np.array_equal(video[:, line:line + 48, :64], a.frames)
    assert np.array_equal(video[0, -key.shape[0]:], key) and np.array_equal(video[3, -key.shape[0]:], key)
    without_labels = compose(clip("x", 4, None), b, shown)
    assert without_labels.shape == (4, line + 48 + 4, 128, 3)  # nothing to explain: no legend
