"""The actions: each draws its procedure's state given per-frame phase ids and progress in [0, 1]."""
from __future__ import annotations

from collections.abc import Callable
from types import MappingProxyType
from typing import NamedTuple

import numpy as np

from vava.pipeline.datasets.synthetic.canvas import Canvas, Look, box, capsule, disc, per_frame

Drawer = Callable[[Canvas, np.ndarray, np.ndarray, Look], None]


def _smoothstep(u: np.ndarray) -> np.ndarray:
    return u * u * (3 - 2 * u)


_STATION_X = np.linspace(0.14, 0.86, 5)


def _draw_stations(canvas: Canvas, phase: np.ndarray, progress: np.ndarray, look: Look) -> None:
    """A ball hopping along a row of five stations, one leg per phase."""
    primary, _, structure, _ = look.colours
    s = look.scale
    for x in _STATION_X:
        canvas.paint(box(canvas, x, 0.72, 0.05 * s, 0.03 * s), structure)
    travel = _smoothstep(progress)
    x = _STATION_X[phase] + travel * (_STATION_X[phase + 1] - _STATION_X[phase])
    y = 0.69 - 0.055 * s - 0.2 * np.sin(np.pi * progress)
    canvas.paint(disc(canvas, x, y, 0.055 * s), primary)


def _draw_fill(canvas: Canvas, phase: np.ndarray, progress: np.ndarray, look: Look) -> None:
    """A container filled in three pours from a spout above, then drained through a tap below."""
    primary, secondary, structure, accent = look.colours
    s = look.scale
    half_w, half_h, bottom = 0.16 * s, 0.22 * s, 0.82
    cx, cy = 0.5, bottom - half_h
    pouring = phase < 3
    level = np.where(pouring, (phase + progress) / 3, 1 - progress)
    canvas.paint(box(canvas, cx, cy, half_w + 0.02, half_h + 0.02), structure)
    canvas.paint(box(canvas, cx, cy, half_w, half_h), 0.5 * (look.background + 1))
    liquid_h = level * half_h
    canvas.paint(box(canvas, cx, bottom - liquid_h, half_w, liquid_h), secondary)
    spout_x, tap_x = cx - 0.35 * half_w, cx + 0.6 * half_w
    canvas.paint(box(canvas, spout_x, 0.1, 0.07, 0.03), accent)
    surface = bottom - 2 * liquid_h
    stream_top, stream_bottom = 0.13, surface
    pour = box(canvas, spout_x, (stream_top + stream_bottom) / 2, 0.012 * s, (stream_bottom - stream_top) / 2)
    canvas.paint(pour * per_frame(pouring), secondary)
    canvas.paint(box(canvas, tap_x, bottom + 0.04, 0.02, 0.02), primary)
    drain = box(canvas, tap_x, bottom + 0.1, 0.012 * s, 0.06)
    canvas.paint(drain * per_frame(~pouring), secondary)


_BLOCK_WIDTHS = (0.34, 0.28, 0.22, 0.16, 0.10)


def _draw_stack(canvas: Canvas, phase: np.ndarray, progress: np.ndarray, look: Look) -> None:
    """Blocks of decreasing width stacked one per phase: each slides in at the top, then drops."""
    primary, secondary, structure, _ = look.colours
    s = look.scale
    floor, height, top = 0.86, 0.09 * s, 0.12
    canvas.paint(box(canvas, 0.5, floor + 0.03, 0.42, 0.03), structure)
    slide = np.clip(2 * progress, 0, 1)
    drop = np.clip(2 * progress - 1, 0, 1) ** 2
    for k, width in enumerate(_BLOCK_WIDTHS):
        rest = floor - (k + 0.5) * height
        moving = phase == k
        x = np.where(moving, 0.5 - 0.4 * (1 - slide), 0.5)
        y = np.where(moving, top + (rest - top) * drop, rest)
        shown = per_frame(phase >= k)
        canvas.paint(box(canvas, x, y, width / 2 * s, height / 2 - 0.004) * shown, (primary, secondary)[k % 2])


# Key poses (absolute segment angles, radians, y downwards) of a three-segment limb.
_KEY_POSES = np.array(
    [[1.4, 1.5, 1.6], [0.0, -0.2, -0.4], [-1.2, -1.3, -1.4], [-0.9, 0.9, 2.2], [1.2, 0.6, 0.3]], dtype=np.float32
)
_SEGMENTS = ((0.22, 0.035), (0.18, 0.03), (0.08, 0.025))  # (length, radius)


def _draw_pose(canvas: Canvas, phase: np.ndarray, progress: np.ndarray, look: Look) -> None:
    """A stick-figure arm moving through key poses, one transition per phase."""
    primary, secondary, structure, accent = look.colours
    s = look.scale
    canvas.paint(box(canvas, 0.3, 0.68, 0.07 * s, 0.2 * s), structure)
    canvas.paint(disc(canvas, 0.3, 0.4, 0.06 * s), structure)
    start, end = _KEY_POSES[phase], _KEY_POSES[phase + 1]
    angles = start + _smoothstep(progress)[:, None] * (end - start)  # (T, 3)
    joint = (np.full(len(phase), 0.33), np.full(len(phase), 0.52))
    for (length, radius), angle, colour in zip(_SEGMENTS, angles.T, (primary, secondary, accent)):
        nxt = (joint[0] + length * s * np.cos(angle), joint[1] + length * s * np.sin(angle))
        canvas.paint(capsule(canvas, joint, nxt, radius * s), colour)
        joint = nxt


class Action(NamedTuple):
    phases: tuple[str, ...]
    draw: Drawer


ACTION_SPECS: dict[str, Action] = {
    "stations": Action(("to_station_2", "to_station_3", "to_station_4", "to_station_5"), _draw_stations),
    "fill": Action(("fill_low", "fill_middle", "fill_top", "drain"), _draw_fill),
    "stack": Action(("base", "second", "third", "fourth", "top"), _draw_stack),
    "pose": Action(("raise", "reach", "fold", "lower"), _draw_pose),
}
# Action name -> phase names in procedure order (label ids 0..P-1; P is background).
ACTIONS: MappingProxyType[str, tuple[str, ...]] = MappingProxyType({k: v.phases for k, v in ACTION_SPECS.items()})
