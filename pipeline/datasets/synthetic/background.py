"""What background frames show besides the idle scene (another scene, cut-aways) and what wanders through
the scene (a hand, someone passing in front), with the kind of each background stretch (benchmark 3)."""
from __future__ import annotations

import numpy as np

from vava.core.records import BACKGROUND_KINDS
from vava.pipeline.datasets.synthetic.canvas import (
    Canvas,
    Look,
    box,
    capsule,
    disc,
    fill_backdrop,
    per_frame,
    random_texture,
)

# Benchmark 3: the chance of each background kind for a background stretch (its flag bit in BACKGROUND_KINDS).
KIND_CHANCES = {"idle": 0.4, "cutaway": 0.3, "distraction": 0.3}


def draw_distractor(canvas: Canvas, times: np.ndarray, rng: np.random.Generator) -> None:
    """An unrelated scene: a different textured backdrop with blobs drifting across it."""
    colour = rng.uniform(0.1, 0.9, 3).astype(np.float32)
    fill_backdrop(canvas, colour, random_texture(rng, 0.3))
    blobs = 4
    start, velocity = rng.uniform(0, 1, (blobs, 2)), rng.uniform(-0.03, 0.03, (blobs, 2))
    radii, colours = rng.uniform(0.06, 0.16, blobs), rng.uniform(0, 1, (blobs, 3)).astype(np.float32)
    for k in range(blobs):
        centre = (start[k][:, None] + velocity[k][:, None] * times) % 1.0  # (2, T)
        canvas.paint(disc(canvas, centre[0], centre[1], radii[k]), colours[k])


def hand_shown(labels: np.ndarray, background: int, strength: float, rng: np.random.Generator) -> np.ndarray:
    """(T,) where the hand is in view: each background stretch with probability 0.8, and one to three
    windows of procedure frames, so that the hand alone does not tell background apart."""
    frames = len(labels)
    idle = labels == background
    stretch = np.cumsum(np.r_[True, idle[1:] != idle[:-1]]) - 1
    shown = idle & (rng.random(stretch[-1] + 1) < 0.8)[stretch]
    windows = int(rng.integers(1, 4))
    starts = rng.integers(0, frames, windows)
    ends = np.minimum(starts + np.round(rng.uniform(0.05, 0.2, windows) * frames).astype(np.int64), frames)
    edges = np.zeros(frames + 1, dtype=np.int64)
    np.add.at(edges, starts, 1)
    np.add.at(edges, ends, -1)
    return (shown | (np.cumsum(edges[:-1]) > 0)) if strength else np.zeros(frames, dtype=bool)


_SKIN = np.array([0.88, 0.68, 0.55], dtype=np.float32)


def draw_hand(canvas: Canvas, shown: np.ndarray, look: Look, rng: np.random.Generator) -> None:
    """An arm reaching in from the top edge, its hand wandering on a smooth path over the scene."""
    t = np.arange(len(shown), dtype=np.float32)
    rate, phase = rng.uniform(0.02, 0.08, 2), rng.uniform(0, 2 * np.pi, 2)
    tip_x = 0.5 + 0.3 * np.sin(2 * np.pi * rate[0] * t + phase[0])
    tip_y = 0.45 + 0.25 * np.sin(2 * np.pi * rate[1] * t + phase[1])
    base = (np.full(len(t), rng.uniform(0.3, 0.7)), np.full(len(t), -0.05))
    colour = np.clip(_SKIN + 0.1 * rng.uniform(-1, 1, 3), 0, 1).astype(np.float32)
    on = per_frame(shown)
    canvas.paint(capsule(canvas, base, (tip_x, tip_y), 0.035 * look.scale) * on, 0.9 * colour)
    canvas.paint(disc(canvas, tip_x, tip_y, 0.06 * look.scale) * on, colour)


def background_kinds(labels: np.ndarray, background: int, rng: np.random.Generator) -> np.ndarray:
    """(T,) uint8: the flag bit of each background frame's kind (`BACKGROUND_KINDS`, 0 for idle and for
    procedure frames), one kind per background stretch drawn with `KIND_CHANCES`."""
    idle = labels == background
    stretch = np.cumsum(np.r_[True, idle[1:] != idle[:-1]]) - 1
    bits = np.array([BACKGROUND_KINDS[kind] for kind in KIND_CHANCES], dtype=np.uint8)
    drawn = rng.choice(bits, size=stretch[-1] + 1, p=list(KIND_CHANCES.values()))
    return np.where(idle, drawn[stretch], 0).astype(np.uint8)


def _stretch_progress(on: np.ndarray) -> np.ndarray:
    """(T,) position in (0, 1) of each frame within its run of True frames of `on` (0 where False)."""
    starts = np.r_[True, on[1:] != on[:-1]]
    run = np.cumsum(starts) - 1
    first = np.flatnonzero(starts)
    lengths = np.diff(np.r_[first, len(on)])
    position = np.arange(len(on)) - first[run]
    return np.where(on, (position + 0.5) / lengths[run], 0.0)


def draw_passer_by(canvas: Canvas, on: np.ndarray, rng: np.random.Generator) -> None:
    """Someone crossing the frame in front of the scene during each stretch of `on` frames."""
    leftwards = rng.random() < 0.5
    across = _stretch_progress(on)
    x = -0.25 + 1.5 * (1 - across if leftwards else across)
    colour, skin = rng.uniform(0.05, 0.95, 3).astype(np.float32), np.clip(_SKIN + 0.1 * rng.uniform(-1, 1, 3), 0, 1)
    shown = per_frame(on)
    canvas.paint(box(canvas, x, 0.75, 0.13, 0.35) * shown, colour)
    canvas.paint(disc(canvas, x, 0.3, 0.1) * shown, skin.astype(np.float32))


def draw_cutaway(canvas: Canvas, times: np.ndarray, rng: np.random.Generator) -> None:
    """What a video cuts away to (one style per video): a presenter talking, a title card, or another scene."""
    style = int(rng.integers(3))
    if style == 2:
        draw_distractor(canvas, times, rng)
        return
    fill_backdrop(canvas, rng.uniform(0.1, 0.9, 3).astype(np.float32), random_texture(rng, 0.1 * style))
    ink = rng.uniform(0, 1, 3).astype(np.float32)
    if style == 1:  # a title card: lines of "text"
        for row, width in enumerate(rng.uniform(0.2, 0.4, 3)):
            canvas.paint(box(canvas, 0.5, 0.35 + 0.15 * row, width, 0.03), ink)
        return
    bob = 0.02 * np.sin(times * rng.uniform(0.3, 0.8))  # a presenter: head and shoulders, mouth moving
    canvas.paint(box(canvas, 0.5, 0.9, 0.3, 0.2), ink)
    canvas.paint(disc(canvas, 0.5, 0.45 + bob, 0.17), np.clip(_SKIN + 0.1 * rng.uniform(-1, 1, 3), 0, 1))
    mouth = 0.01 + 0.02 * (np.sin(times * 2.1) > 0)
    canvas.paint(box(canvas, 0.5, 0.52 + bob, 0.05, mouth), np.zeros(3, dtype=np.float32))
