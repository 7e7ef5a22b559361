"""Built-in synthetic "in the wild" dataset: procedural videos of multi-phase actions.

Each action is a procedure of ordered phases (labels 0..P-1) drawn with a few shapes; label P is
reserved for background frames. `Variations` sets how far each video strays from a clean, monotone
performance (speed, appearance, camera jitter, noise, inserted background, holds, reordered phases).
Everything is drawn from one generator per video, seeded from (seed, action index, video index), so a
video never depends on the others or on how many were requested.

Three benchmark versions: 1 (the first release, kept frame for frame); 2 (kept frame for frame), where
position in time is a poor predictor of the phase: log-normal phase durations, background that is the
procedure's own scene left idle (state frozen, a hand wandering) at the start, in the middle and at the
end, and reordered, repeated and omitted phases in most wild videos; and 3, benchmark 2 whose background
stretches are of three kinds, as in videos from the wild: idle (as in 2), cut-aways (a presenter, a
title card or another scene: no match in the procedure) and distractions (the idle scene with someone
passing in front), each kind flagged per frame.

Rendering works on whole videos at once: the scene coordinates are (T, 1, S) and (T, S, 1) arrays
(one per axis and frame, camera shake included), and each shape is a soft mask broadcast to (T, S, S).
"""
from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from types import MappingProxyType
from typing import ClassVar, NamedTuple

import numpy as np

from vava.core.errors import VavaError
from vava.core.files import atomic_write
from vava.core.records import BACKGROUND_KINDS, frame_flags
from vava.core.validation import (
    Rule,
    checked,
    instance,
    invalid,
    is_integer,
    is_real,
    number,
    option_error,
    validate,
)
from vava.core.videoio import write_video
from vava.pipeline.datasets.folder import MANIFEST_NAME, load_folder, write_manifest

PROVENANCE_NAME = "synth.json"
GENERATOR = "vava-synthetic/1"
MIN_PROCEDURE_FRAMES = 16
_MIN_PHASE_FRAMES = 2
MAX_FPS = 1000.0
BENCHMARKS = (1, 2, 3)
MAX_BACKGROUND_SHARE = 0.75  # benchmark 2: background frames per video at most
_MAX_EXTRA_SEGMENTS = 3  # benchmark 2: repeats a procedure may gain (each phase needs _MIN_PHASE_FRAMES)
# Rendering one video peaks at about 50 bytes per frame pixel (float32 frames, canvas and masks).
_RENDER_BYTES_PER_PIXEL = 56
MAX_RENDER_BYTES = 4 * 2**30


def _count(minimum: int) -> Rule:
    """An integer >= `minimum`."""
    return Rule(lambda v: is_integer(v) and v >= minimum, f">= {minimum}",
                lambda v: f"must be >= {minimum}, got {v}" if is_integer(v) else f"expected an integer, got {v!r}")


def _frames_problem(pair: object) -> str | None:
    if not (isinstance(pair, (tuple, list)) and len(pair) == 2):
        return f"expected a (min, max) pair, got {pair!r}"
    return next((_PROCEDURE_FRAMES.message(v) for v in pair if not _PROCEDURE_FRAMES.holds(v)), None)


_PROCEDURE_FRAMES = _count(MIN_PROCEDURE_FRAMES)
STRENGTH = Rule(lambda v: is_real(v) and 0 <= v <= 1, "a number in [0, 1]",
                lambda v: f"strength must be a number in [0, 1], got {v!r}")
FRAMES = Rule(lambda pair: _frames_problem(pair) is None, "a (min, max) pair", _frames_problem)
BENCHMARK = Rule(lambda v: is_integer(v) and v in BENCHMARKS, f"one of {', '.join(map(str, BENCHMARKS))}")


@dataclass(frozen=True)
class Variations:
    """Strength in [0, 1] of each departure from a clean performance (0 = off).

    speed: spread of the procedure length over the `frames` range, per-phase duration spread and
        monotone time warping inside phases (benchmark 2: phase weights are log-normal with sigma = speed).
    appearance: colours, background texture, object size, scene position and zoom.
    jitter: per-frame camera translation (benchmark 2: plus a slow drift).
    noise: per-pixel gaussian noise.
    background: benchmark 1: unrelated frames (label P) inserted at the start, middle and/or end;
        benchmark 2: a share of the video drawn in [0.4, 1] x strength (at most 75%) of in-scene idle frames
        at the start, in one or two places in the middle and at the end, with a hand wandering about.
    redundant: holds (the state frozen for a while) inside phases.
    nonmonotonic: benchmark 1: per-video probability that a phase is repeated or two adjacent phases
        swapped; benchmark 2: per-video probability of one to three swaps (any two phases) or repeats
        of an earlier phase, and half of it that a phase is omitted.
    """

    KEYS_ARE_OPTIONS: ClassVar[bool] = True  # errors name the command-line options: --noise

    speed: float = checked(STRENGTH, 0.0)
    appearance: float = checked(STRENGTH, 0.0)
    jitter: float = checked(STRENGTH, 0.0)
    noise: float = checked(STRENGTH, 0.0)
    background: float = checked(STRENGTH, 0.0)
    redundant: float = checked(STRENGTH, 0.0)
    nonmonotonic: float = checked(STRENGTH, 0.0)

    def __post_init__(self) -> None:
        validate(self)


CLEAN = Variations(speed=0.3, appearance=0.3)
WILD = replace(CLEAN, background=0.5, redundant=0.5, nonmonotonic=0.3, jitter=0.3, noise=0.3)
CLEAN_V2 = Variations(speed=0.8, appearance=0.3)
WILD_V2 = replace(CLEAN_V2, background=0.5, redundant=0.5, nonmonotonic=0.8, jitter=0.3, noise=0.3)
PRESETS: MappingProxyType[int, dict[str, Variations]] = MappingProxyType({
    1: {"clean": CLEAN, "wild": WILD}, 2: {"clean": CLEAN_V2, "wild": WILD_V2}, 3: {"clean": CLEAN_V2, "wild": WILD_V2}})
# Benchmark 3: the chance of each background kind for a background stretch (its flag bit in BACKGROUND_KINDS).
KIND_CHANCES = {"idle": 0.4, "cutaway": 0.3, "distraction": 0.3}


def preset(name: str, benchmark: int) -> Variations:
    """The `clean` or `wild` strengths of a benchmark version; ConfigError naming --benchmark if unknown."""
    if not BENCHMARK.holds(benchmark):
        raise option_error("benchmark", BENCHMARK.message(benchmark))
    return PRESETS[benchmark][name]


@dataclass(frozen=True)
class SynthConfig:
    """What to generate.

    `frames` bounds the length of the procedure itself: each video's length is drawn around the
    middle of the range, over all of it at `speed` 1. Inserted background frames come on top, so a
    video can be longer than `frames[1]`. `videos` and `val_fraction` are per action. `benchmark`
    is the version (see the module docstring).
    """

    KEYS_ARE_OPTIONS: ClassVar[bool] = True  # errors name the command-line options: --val-fraction

    actions: int = checked(_count(1), 3)
    videos: int = checked(_count(1), 10)
    val_fraction: float = checked(number(above=0, below=1, phrase="in (0, 1)"), 0.3)
    size: int = checked(_count(32), 64)  # even (checked below)
    frames: tuple[int, int] = checked(FRAMES, (40, 80))  # min <= max (checked below)
    fps: float = checked(number(at_least=1, at_most=MAX_FPS, phrase=f"a number from 1 to {MAX_FPS:g}"), 15.0)
    seed: int = checked(_count(0), 0)
    variations: Variations = checked(instance(Variations, "a Variations"), CLEAN)
    benchmark: int = checked(BENCHMARK, 3)

    def __post_init__(self) -> None:
        validate(self)
        if self.actions > len(ACTIONS):
            raise invalid(self, "actions",
                          f"at most {len(ACTIONS)} available ({', '.join(ACTIONS)}), got {self.actions}")
        if self.size % 2:
            raise invalid(self, "size", f"must be even (yuv420p video), got {self.size}")
        if self.frames[0] > self.frames[1]:
            raise invalid(self, "frames", f"min {self.frames[0]} > max {self.frames[1]}")
        longest = self.longest_video()
        need = longest * self.size**2 * _RENDER_BYTES_PER_PIXEL
        if need > MAX_RENDER_BYTES:
            raise invalid(self, "frames/size", f"a video of up to {longest} frames of {self.size}x{self.size} pixels "
                          f"needs about {need / 2**30:.1f} GiB to render, over the {MAX_RENDER_BYTES // 2**30} GiB "
                          "limit; use fewer frames or a smaller size")

    def longest_video(self) -> int:
        """Most frames a video can have: the longest procedure plus the most background (`_background_slots`,
        `_background_v2`)."""
        high, background = self.frames[1], self.variations.background
        if not background:
            return high
        if self.benchmark == 1:
            return high + 3 * max(2, round(high * background * 0.5))
        return high + _background_frames(high, min(background, MAX_BACKGROUND_SHARE), 4)


# ---------------------------------------------------------------------------------------------
# Drawing primitives


@dataclass
class _Canvas:
    """The frames being drawn and the scene coordinates of their pixels."""

    x: np.ndarray  # (T, 1, S) scene x of each pixel column, per frame
    y: np.ndarray  # (T, S, 1) scene y (downwards) of each pixel row, per frame
    pixel: float  # one pixel in scene units: the anti-aliasing width
    image: np.ndarray  # (T, S, S, 3) float32 RGB in [0, 1]

    @classmethod
    def blank(cls, x: np.ndarray, y: np.ndarray, pixel: float) -> _Canvas:
        return cls(x, y, pixel, np.empty((x.shape[0], y.shape[1], x.shape[2], 3), dtype=np.float32))

    def paint(self, alpha: np.ndarray, colour: np.ndarray) -> None:
        """Blend `colour` over the image with coverage `alpha` (T, S, S).

        Only the block of frames, rows and columns that `alpha` touches is updated: shapes cover
        a small part of the frame, and blending is the costliest step of rendering.
        """
        window = tuple(_touched(alpha.any(axis=other)) for other in ((1, 2), (0, 2), (0, 1)))
        region = self.image[window]
        region += alpha[window][..., None] * (colour - region)

    def coverage(self, distance: np.ndarray) -> np.ndarray:
        """Soft mask from a signed distance (negative inside), one pixel wide at the edge."""
        return np.clip(0.5 - distance / self.pixel, 0.0, 1.0)


def _touched(mask: np.ndarray) -> slice:
    """The smallest slice holding every True of a 1-D mask (empty if none)."""
    hits = np.flatnonzero(mask)
    return slice(hits[0], hits[-1] + 1) if hits.size else slice(0, 0)


_Param = float | np.ndarray  # a scalar, or one value per frame (T,)


def _per_frame(value: _Param) -> float | np.ndarray:
    """A scalar, or a (T,) per-frame parameter reshaped to (T, 1, 1) to broadcast over pixels."""
    if np.ndim(value) == 0:
        return float(value)
    return np.asarray(value, dtype=np.float32).reshape(-1, 1, 1)


def _disc(canvas: _Canvas, cx: _Param, cy: _Param, radius: _Param) -> np.ndarray:
    dx, dy = canvas.x - _per_frame(cx), canvas.y - _per_frame(cy)
    return canvas.coverage(np.sqrt(dx * dx + dy * dy) - _per_frame(radius))


def _box(canvas: _Canvas, cx: _Param, cy: _Param, half_w: _Param, half_h: _Param) -> np.ndarray:
    outside_x = np.abs(canvas.x - _per_frame(cx)) - _per_frame(half_w)
    outside_y = np.abs(canvas.y - _per_frame(cy)) - _per_frame(half_h)
    return canvas.coverage(np.maximum(outside_x, outside_y))


def _capsule(canvas: _Canvas, a: tuple[_Param, _Param], b: tuple[_Param, _Param], radius: float) -> np.ndarray:
    """A segment from point a to point b with round ends."""
    ax, ay, bx, by = (_per_frame(v) for v in (*a, *b))
    px, py = canvas.x - ax, canvas.y - ay
    vx, vy = bx - ax, by - ay
    along = np.clip((px * vx + py * vy) / (vx * vx + vy * vy + 1e-12), 0.0, 1.0)
    dx, dy = px - along * vx, py - along * vy
    return canvas.coverage(np.sqrt(dx * dx + dy * dy) - radius)


# ---------------------------------------------------------------------------------------------
# Appearance of one video


class _Texture(NamedTuple):
    """A smooth random pattern: a few plane waves, tinted."""

    amplitude: np.ndarray  # (K,)
    frequency: np.ndarray  # (K, 2) cycles per scene unit, along x and y
    phase: np.ndarray  # (K,)
    tint: np.ndarray  # (3,)


@dataclass(frozen=True)
class _Look:
    background: np.ndarray  # (3,)
    colours: np.ndarray  # (4, 3): primary, secondary, structure, accent
    scale: float  # object size factor
    zoom: float  # scene scale in the frame
    offset: tuple[float, float]  # scene centre offset, in frame widths
    texture: _Texture


_BASE_BACKGROUND = np.array([0.86, 0.86, 0.83], dtype=np.float32)
_BASE_COLOURS = np.array(
    [[0.85, 0.30, 0.20], [0.20, 0.45, 0.80], [0.22, 0.22, 0.27], [0.95, 0.75, 0.20]], dtype=np.float32
)


def _random_texture(rng: np.random.Generator, amplitude: float, waves: int = 3) -> _Texture:
    return _Texture(
        amplitude=(amplitude * rng.uniform(0.5, 1.0, waves)).astype(np.float32),
        frequency=rng.uniform(-4.0, 4.0, (waves, 2)).astype(np.float32),
        phase=rng.uniform(0.0, 2 * np.pi, waves).astype(np.float32),
        tint=rng.uniform(-1.0, 1.0, 3).astype(np.float32),
    )


def _draw_look(strength: float, rng: np.random.Generator) -> _Look:
    """Colours, sizes and placement; every draw is made whatever the strength."""
    background = _BASE_BACKGROUND + strength * rng.uniform(-0.35, 0.35, 3)
    colours = _BASE_COLOURS + strength * rng.uniform(-0.35, 0.35, (4, 3))
    scale = 1.0 + strength * rng.uniform(-0.25, 0.25)
    zoom = 1.0 + strength * rng.uniform(-0.2, 0.2)
    offset = strength * rng.uniform(-0.08, 0.08, 2)
    return _Look(
        background=np.clip(background, 0, 1).astype(np.float32),
        colours=np.clip(colours, 0, 1).astype(np.float32),
        scale=float(scale),
        zoom=float(zoom),
        offset=(float(offset[0]), float(offset[1])),
        texture=_random_texture(rng, 0.25 * strength),
    )


def _scene_coordinates(
    frames: int, size: int, look: _Look, jitter: float, rng: np.random.Generator, drift: np.ndarray | float = 0.0
) -> tuple[np.ndarray, np.ndarray]:
    """Per-frame scene coordinates of pixel columns (T, 1, S) and rows (T, S, 1), camera shake (and a
    (2, T) `drift` of the camera) included."""
    shake = np.clip(rng.standard_normal((2, frames)), -3, 3) * (0.05 * jitter) + drift
    centred = ((np.arange(size) + 0.5) / size - 0.5).astype(np.float32)
    x = (centred[None, None, :] - (look.offset[0] + shake[0])[:, None, None]) / look.zoom + 0.5
    y = (centred[None, :, None] - (look.offset[1] + shake[1])[:, None, None]) / look.zoom + 0.5
    return x.astype(np.float32), y.astype(np.float32)


def _fill_backdrop(canvas: _Canvas, colour: np.ndarray, texture: _Texture) -> None:
    """Flat colour plus the texture pattern.

    Each wave is sin(a + b) with a from x and b from y, i.e. sin a cos b + cos a sin b: a sum of
    outer products of (T, S, 1) and (T, 1, S) factors, so one batched matmul gives the (T, S, S) pattern.
    """
    if not texture.amplitude.any():
        canvas.image[...] = colour
        return
    a = (2 * np.pi * texture.frequency[:, :1]) * canvas.x + texture.phase[:, None]  # (T, K, S)
    b = canvas.y * (2 * np.pi * texture.frequency[:, 1])  # (T, S, K)
    amplitude = texture.amplitude[:, None]
    rows = np.concatenate([np.cos(b), np.sin(b)], axis=2)
    columns = np.concatenate([amplitude * np.sin(a), amplitude * np.cos(a)], axis=1)
    np.multiply((rows @ columns)[..., None], texture.tint, out=canvas.image)
    canvas.image += colour


# ---------------------------------------------------------------------------------------------
# Actions: each draws the procedure state given per-frame phase ids and progress in [0, 1]

_Drawer = Callable[[_Canvas, np.ndarray, np.ndarray, _Look], None]


def _smoothstep(u: np.ndarray) -> np.ndarray:
    return u * u * (3 - 2 * u)


_STATION_X = np.linspace(0.14, 0.86, 5)


def _draw_stations(canvas: _Canvas, phase: np.ndarray, progress: np.ndarray, look: _Look) -> None:
    """A ball hopping along a row of five stations, one leg per phase."""
    primary, _, structure, _ = look.colours
    s = look.scale
    for x in _STATION_X:
        canvas.paint(_box(canvas, x, 0.72, 0.05 * s, 0.03 * s), structure)
    travel = _smoothstep(progress)
    x = _STATION_X[phase] + travel * (_STATION_X[phase + 1] - _STATION_X[phase])
    y = 0.69 - 0.055 * s - 0.2 * np.sin(np.pi * progress)
    canvas.paint(_disc(canvas, x, y, 0.055 * s), primary)


def _draw_fill(canvas: _Canvas, phase: np.ndarray, progress: np.ndarray, look: _Look) -> None:
    """A container filled in three pours from a spout above, then drained through a tap below."""
    primary, secondary, structure, accent = look.colours
    s = look.scale
    half_w, half_h, bottom = 0.16 * s, 0.22 * s, 0.82
    cx, cy = 0.5, bottom - half_h
    pouring = phase < 3
    level = np.where(pouring, (phase + progress) / 3, 1 - progress)
    canvas.paint(_box(canvas, cx, cy, half_w + 0.02, half_h + 0.02), structure)
    canvas.paint(_box(canvas, cx, cy, half_w, half_h), 0.5 * (look.background + 1))
    liquid_h = level * half_h
    canvas.paint(_box(canvas, cx, bottom - liquid_h, half_w, liquid_h), secondary)
    spout_x, tap_x = cx - 0.35 * half_w, cx + 0.6 * half_w
    canvas.paint(_box(canvas, spout_x, 0.1, 0.07, 0.03), accent)
    surface = bottom - 2 * liquid_h
    stream_top, stream_bottom = 0.13, surface
    pour = _box(canvas, spout_x, (stream_top + stream_bottom) / 2, 0.012 * s, (stream_bottom - stream_top) / 2)
    canvas.paint(pour * _per_frame(pouring), secondary)
    canvas.paint(_box(canvas, tap_x, bottom + 0.04, 0.02, 0.02), primary)
    drain = _box(canvas, tap_x, bottom + 0.1, 0.012 * s, 0.06)
    canvas.paint(drain * _per_frame(~pouring), secondary)


_BLOCK_WIDTHS = (0.34, 0.28, 0.22, 0.16, 0.10)


def _draw_stack(canvas: _Canvas, phase: np.ndarray, progress: np.ndarray, look: _Look) -> None:
    """Blocks of decreasing width stacked one per phase: each slides in at the top, then drops."""
    primary, secondary, structure, _ = look.colours
    s = look.scale
    floor, height, top = 0.86, 0.09 * s, 0.12
    canvas.paint(_box(canvas, 0.5, floor + 0.03, 0.42, 0.03), structure)
    slide = np.clip(2 * progress, 0, 1)
    drop = np.clip(2 * progress - 1, 0, 1) ** 2
    for k, width in enumerate(_BLOCK_WIDTHS):
        rest = floor - (k + 0.5) * height
        moving = phase == k
        x = np.where(moving, 0.5 - 0.4 * (1 - slide), 0.5)
        y = np.where(moving, top + (rest - top) * drop, rest)
        shown = _per_frame(phase >= k)
        canvas.paint(_box(canvas, x, y, width / 2 * s, height / 2 - 0.004) * shown, (primary, secondary)[k % 2])


# Key poses (absolute segment angles, radians, y downwards) of a three-segment limb.
_KEY_POSES = np.array(
    [[1.4, 1.5, 1.6], [0.0, -0.2, -0.4], [-1.2, -1.3, -1.4], [-0.9, 0.9, 2.2], [1.2, 0.6, 0.3]], dtype=np.float32
)
_SEGMENTS = ((0.22, 0.035), (0.18, 0.03), (0.08, 0.025))  # (length, radius)


def _draw_pose(canvas: _Canvas, phase: np.ndarray, progress: np.ndarray, look: _Look) -> None:
    """A stick-figure arm moving through key poses, one transition per phase."""
    primary, secondary, structure, accent = look.colours
    s = look.scale
    canvas.paint(_box(canvas, 0.3, 0.68, 0.07 * s, 0.2 * s), structure)
    canvas.paint(_disc(canvas, 0.3, 0.4, 0.06 * s), structure)
    start, end = _KEY_POSES[phase], _KEY_POSES[phase + 1]
    angles = start + _smoothstep(progress)[:, None] * (end - start)  # (T, 3)
    joint = (np.full(len(phase), 0.33), np.full(len(phase), 0.52))
    for (length, radius), angle, colour in zip(_SEGMENTS, angles.T, (primary, secondary, accent)):
        nxt = (joint[0] + length * s * np.cos(angle), joint[1] + length * s * np.sin(angle))
        canvas.paint(_capsule(canvas, joint, nxt, radius * s), colour)
        joint = nxt


class _Action(NamedTuple):
    phases: tuple[str, ...]
    draw: _Drawer


_ACTIONS: dict[str, _Action] = {
    "stations": _Action(("to_station_2", "to_station_3", "to_station_4", "to_station_5"), _draw_stations),
    "fill": _Action(("fill_low", "fill_middle", "fill_top", "drain"), _draw_fill),
    "stack": _Action(("base", "second", "third", "fourth", "top"), _draw_stack),
    "pose": _Action(("raise", "reach", "fold", "lower"), _draw_pose),
}
# Action name -> phase names in procedure order (label ids 0..P-1; P is background).
ACTIONS: MappingProxyType[str, tuple[str, ...]] = MappingProxyType({k: v.phases for k, v in _ACTIONS.items()})


# ---------------------------------------------------------------------------------------------
# Timeline: which phase, and how far into it, each frame shows


def _phase_order(phases: int, strength: float, rng: np.random.Generator) -> list[int]:
    """Procedure order, with probability `strength` perturbed by one repeat or one adjacent swap."""
    perturb, k, swap = rng.random() < strength, int(rng.integers(phases - 1)), rng.random() < 0.5
    order = list(range(phases))
    if perturb and swap:
        order[k], order[k + 1] = order[k + 1], order[k]
    elif perturb:
        order.insert(k + 2, k)  # phase k done again right after phase k+1
    return order


def _split(total: int, weights: np.ndarray, minimum: int) -> np.ndarray:
    """Integers summing to `total`, each >= `minimum`, the rest shared in proportion to `weights`."""
    spare = total - minimum * len(weights)
    share = spare * weights / weights.sum()
    counts = np.floor(share).astype(np.int64)
    counts[np.argsort(counts - share, kind="stable")[: spare - counts.sum()]] += 1
    return counts + minimum


def _phase_progress(frames: int, speed: float, redundant: float, rng: np.random.Generator) -> np.ndarray:
    """Progress in [0, 1] over one phase: warped by a random gamma, possibly with one hold."""
    gamma = math.exp(0.7 * speed * rng.standard_normal())
    hold_drawn, hold_fraction, hold_place = rng.random() < redundant, rng.uniform(0.4, 1.0), rng.random()
    hold = min(round(frames * redundant * hold_fraction), frames - 1) if hold_drawn else 0
    steps = np.ones(frames)
    start = int(hold_place * (frames - hold + 1)) if hold else 0
    steps[start : start + hold] = 0  # frozen: these frames repeat the state before them
    moving = frames - hold
    progress = np.clip((np.cumsum(steps) - 0.5) / moving, 0.0, 1.0)
    return progress**gamma


def _background_slots(length: int, strength: float, rng: np.random.Generator) -> list[tuple[int, int]]:
    """(insert position in the procedure, frame count) of each background segment, in order."""
    occurs = rng.random(3) < np.array([1.0, 0.6, 1.0]) * strength
    counts = np.maximum(2, np.round(length * strength * rng.uniform(0.2, 0.5, 3))).astype(int)
    middle = int(rng.uniform(0.25, 0.75) * length)
    return [(at, int(n)) for at, n, on in zip((0, middle, length), counts, occurs) if on]


class _Timeline(NamedTuple):
    labels: np.ndarray  # (T,) phase label, `phases` for background
    phase: np.ndarray  # (T,) the phase whose state a frame shows (benchmark 1: its label)
    progress: np.ndarray  # (T,) float32 progress through that phase, in [0, 1]


def _timeline_v1(phases: int, config: SynthConfig, rngs: dict[str, np.random.Generator]) -> _Timeline:
    """Benchmark 1: background frames get label `phases` and progress 0 (they show another scene)."""
    v = config.variations
    low, high = config.frames
    length = round((low + high) / 2 + v.speed * rngs["length"].uniform(-1, 1) * (high - low) / 2)
    order = _phase_order(phases, v.nonmonotonic, rngs["order"])
    weights = np.exp(0.8 * v.speed * rngs["length"].standard_normal(phases + 1))[: len(order)]
    durations = _split(length, weights, _MIN_PHASE_FRAMES)
    labels = np.repeat(np.asarray(order, dtype=np.int64), durations)
    progress = np.concatenate([_phase_progress(int(n), v.speed, v.redundant, rngs["holds"]) for n in durations])
    for at, count in reversed(_background_slots(length, v.background, rngs["background"])):
        labels = np.insert(labels, at, np.full(count, phases))
        progress = np.insert(progress, at, np.zeros(count))
    return _Timeline(labels, labels, progress.astype(np.float32))


def _reordered(phases: int, strength: float, rng: np.random.Generator) -> list[int]:
    """Benchmark 2 procedure order: with probability `strength` one to three swaps (of two phases in order)
    or repeats (an earlier phase done again right after a later one); with probability `strength / 2` one
    phase omitted. Each swap or repeat adds an inversion, so a reordered procedure is never monotone."""
    reorder, omit = rng.random() < strength, rng.random() < strength / 2
    order = list(range(phases))
    if omit:
        del order[int(rng.integers(phases))]
    for _ in range(1 + int(rng.binomial(2, 0.35)) if reorder else 0):
        n = len(order)
        swapped = [order[:i] + [order[j]] + order[i + 1:j] + [order[i]] + order[j + 1:]
                   for i in range(n) for j in range(i + 1, n) if order[i] < order[j]]
        repeated = [order[:at] + [k] + order[at:] for at in range(1, n + 1) for k in sorted(set(order[:at]))
                    if k < order[at - 1] and order[at:at + 1] != [k]] if n < phases + _MAX_EXTRA_SEGMENTS else []
        first, second = (swapped, repeated) if rng.random() < 0.5 else (repeated, swapped)
        if choices := first or second:  # neither only when the order is already strictly decreasing
            order = choices[int(rng.integers(len(choices)))]
    return [k for i, k in enumerate(order) if i == 0 or k != order[i - 1]]


def _background_frames(length: int, share: float, slots: int) -> int:
    """Background frames that make `share` of a video with `length` procedure frames (2 per slot at least)."""
    return max(2 * slots, round(length * share / (1 - share)))


def _background_v2(length: int, strength: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(insert positions in the procedure, frame counts) of the background stretches: at the start, at one
    or two points in the middle and at the end, their lengths shared at random (flat Dirichlet)."""
    share = min(strength * rng.uniform(0.4, 1.0), MAX_BACKGROUND_SHARE)
    middle = np.sort(rng.uniform(0.15, 0.85, 1 + int(rng.random() < 0.5)) * length).astype(np.int64)
    at = np.r_[0, middle, length]
    counts = _split(_background_frames(length, share, len(at)), rng.dirichlet(np.ones(len(at))), 2)
    return (at, counts) if strength else (at[:0], counts[:0])


def _timeline_v2(phases: int, config: SynthConfig, rngs: dict[str, np.random.Generator]) -> _Timeline:
    """Benchmark 2: background frames (label `phases`) show the procedure's state frozen where they are
    inserted: the first frame's start before the procedure, the last frame's state after it."""
    v = config.variations
    low, high = config.frames
    length = round((low + high) / 2 + v.speed * rngs["length"].uniform(-1, 1) * (high - low) / 2)
    order = _reordered(phases, v.nonmonotonic, rngs["order"])
    durations = _split(length, np.exp(v.speed * rngs["length"].standard_normal(len(order))), _MIN_PHASE_FRAMES)
    steps = np.repeat(np.asarray(order, dtype=np.int64), durations)
    progress = np.concatenate([_phase_progress(int(n), v.speed, v.redundant, rngs["holds"]) for n in durations])
    at, counts = _background_v2(length, v.background, rngs["background"])
    inserted = np.repeat(at, counts)
    before = np.maximum(inserted - 1, 0)
    return _Timeline(labels=np.insert(steps, inserted, phases),
                     phase=np.insert(steps, inserted, steps[before]),
                     progress=np.insert(progress, inserted, np.where(inserted > 0, progress[before], 0.0))
                     .astype(np.float32))


_TIMELINES = {1: _timeline_v1, 2: _timeline_v2, 3: _timeline_v2}


# ---------------------------------------------------------------------------------------------
# Videos


def _draw_distractor(canvas: _Canvas, times: np.ndarray, rng: np.random.Generator) -> None:
    """An unrelated scene: a different textured backdrop with blobs drifting across it."""
    colour = rng.uniform(0.1, 0.9, 3).astype(np.float32)
    _fill_backdrop(canvas, colour, _random_texture(rng, 0.3))
    blobs = 4
    start, velocity = rng.uniform(0, 1, (blobs, 2)), rng.uniform(-0.03, 0.03, (blobs, 2))
    radii, colours = rng.uniform(0.06, 0.16, blobs), rng.uniform(0, 1, (blobs, 3)).astype(np.float32)
    for k in range(blobs):
        centre = (start[k][:, None] + velocity[k][:, None] * times) % 1.0  # (2, T)
        canvas.paint(_disc(canvas, centre[0], centre[1], radii[k]), colours[k])


def _camera_drift(frames: int, jitter: float, rng: np.random.Generator) -> np.ndarray:
    """(2, T) slow camera drift: two low-frequency sinusoids per axis, up to about 0.1 x `jitter` of the frame."""
    cycles = rng.uniform(0.3, 1.5, (2, 2, 1)) * np.linspace(0, 1, frames)  # (axis, wave, T)
    offsets = rng.uniform(0, 2 * np.pi, (2, 2, 1))
    return 0.05 * jitter * np.sin(2 * np.pi * cycles + offsets).sum(axis=1)


def _hand_shown(labels: np.ndarray, background: int, strength: float, rng: np.random.Generator) -> np.ndarray:
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


def _draw_hand(canvas: _Canvas, shown: np.ndarray, look: _Look, rng: np.random.Generator) -> None:
    """An arm reaching in from the top edge, its hand wandering on a smooth path over the scene."""
    t = np.arange(len(shown), dtype=np.float32)
    rate, phase = rng.uniform(0.02, 0.08, 2), rng.uniform(0, 2 * np.pi, 2)
    tip_x = 0.5 + 0.3 * np.sin(2 * np.pi * rate[0] * t + phase[0])
    tip_y = 0.45 + 0.25 * np.sin(2 * np.pi * rate[1] * t + phase[1])
    base = (np.full(len(t), rng.uniform(0.3, 0.7)), np.full(len(t), -0.05))
    colour = np.clip(_SKIN + 0.1 * rng.uniform(-1, 1, 3), 0, 1).astype(np.float32)
    on = _per_frame(shown)
    canvas.paint(_capsule(canvas, base, (tip_x, tip_y), 0.035 * look.scale) * on, 0.9 * colour)
    canvas.paint(_disc(canvas, tip_x, tip_y, 0.06 * look.scale) * on, colour)


def _background_kinds(labels: np.ndarray, background: int, rng: np.random.Generator) -> np.ndarray:
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


def _draw_passer_by(canvas: _Canvas, on: np.ndarray, rng: np.random.Generator) -> None:
    """Someone crossing the frame in front of the scene during each stretch of `on` frames."""
    leftwards = rng.random() < 0.5
    across = _stretch_progress(on)
    x = -0.25 + 1.5 * (1 - across if leftwards else across)
    colour, skin = rng.uniform(0.05, 0.95, 3).astype(np.float32), np.clip(_SKIN + 0.1 * rng.uniform(-1, 1, 3), 0, 1)
    shown = _per_frame(on)
    canvas.paint(_box(canvas, x, 0.75, 0.13, 0.35) * shown, colour)
    canvas.paint(_disc(canvas, x, 0.3, 0.1) * shown, skin.astype(np.float32))


def _draw_cutaway(canvas: _Canvas, times: np.ndarray, rng: np.random.Generator) -> None:
    """What a video cuts away to (one style per video): a presenter talking, a title card, or another scene."""
    style = int(rng.integers(3))
    if style == 2:
        _draw_distractor(canvas, times, rng)
        return
    _fill_backdrop(canvas, rng.uniform(0.1, 0.9, 3).astype(np.float32), _random_texture(rng, 0.1 * style))
    ink = rng.uniform(0, 1, 3).astype(np.float32)
    if style == 1:  # a title card: lines of "text"
        for row, width in enumerate(rng.uniform(0.2, 0.4, 3)):
            canvas.paint(_box(canvas, 0.5, 0.35 + 0.15 * row, width, 0.03), ink)
        return
    bob = 0.02 * np.sin(times * rng.uniform(0.3, 0.8))  # a presenter: head and shoulders, mouth moving
    canvas.paint(_box(canvas, 0.5, 0.9, 0.3, 0.2), ink)
    canvas.paint(_disc(canvas, 0.5, 0.45 + bob, 0.17), np.clip(_SKIN + 0.1 * rng.uniform(-1, 1, 3), 0, 1))
    mouth = 0.01 + 0.02 * (np.sin(times * 2.1) > 0)
    canvas.paint(_box(canvas, 0.5, 0.52 + bob, 0.05, mouth), np.zeros(3, dtype=np.float32))


_STREAMS = ("length", "order", "holds", "background", "look", "camera", "noise", "motion", "kinds")


class Rendered(NamedTuple):
    frames: np.ndarray  # (T, S, S, 3) uint8
    labels: np.ndarray  # (T,) int64, background = P
    flags: np.ndarray   # (T,) uint8 `FRAME_FLAGS` bits


def render_video(action: str, rng: np.random.Generator, config: SynthConfig) -> Rendered:
    """One video of `action`: its frames, labels (background = P) and per-frame flags.

    Each aspect (timing, holds, background, look, camera, noise, the hand, background kinds) has its own
    child generator, so changing one variation's strength leaves the others' draws as they were.
    Benchmark 1 shows background frames as another scene; benchmark 2 in the procedure's own;
    benchmark 3 in the procedure's own, cut away from it, or with someone passing in front.
    """
    if action not in _ACTIONS:
        raise VavaError(f"unknown synthetic action {action!r} (known: {', '.join(ACTIONS)})")
    spec, v, phases = _ACTIONS[action], config.variations, len(_ACTIONS[action].phases)
    rngs = dict(zip(_STREAMS, rng.spawn(len(_STREAMS))))
    labels, phase, progress = _TIMELINES[config.benchmark](phases, config, rngs)
    kinds = _background_kinds(labels, phases, rngs["kinds"]) if config.benchmark == 3 else np.zeros_like(labels,
                                                                                                           np.uint8)
    look = _draw_look(v.appearance, rngs["look"])
    in_scene = labels < phases if config.benchmark == 1 else kinds != BACKGROUND_KINDS["cutaway"]
    drift = _camera_drift(len(labels), v.jitter, rngs["motion"]) if config.benchmark >= 2 else 0.0
    x, y = _scene_coordinates(len(labels), config.size, look, v.jitter, rngs["camera"], drift)
    frames = np.empty((len(labels), config.size, config.size, 3), dtype=np.float32)
    pixel = 1.0 / (config.size * look.zoom)
    scene = _Canvas.blank(x[in_scene], y[in_scene], pixel)
    _fill_backdrop(scene, look.background, look.texture)
    spec.draw(scene, phase[in_scene], progress[in_scene], look)
    if config.benchmark >= 2:
        shown = _hand_shown(labels, phases, v.background, rngs["motion"])
        _draw_hand(scene, shown[in_scene], look, rngs["motion"])
    if config.benchmark == 3:
        _draw_passer_by(scene, kinds[in_scene] == BACKGROUND_KINDS["distraction"], rngs["kinds"])
    frames[in_scene] = scene.image
    if not in_scene.all():
        other = _Canvas.blank(x[~in_scene], y[~in_scene], pixel)
        times = np.flatnonzero(~in_scene).astype(np.float32)
        if config.benchmark == 1:
            _draw_distractor(other, times, rngs["background"])
        else:
            _draw_cutaway(other, times, rngs["kinds"])
        frames[~in_scene] = other.image
    if v.noise > 0:
        frames += rngs["noise"].standard_normal(frames.shape, dtype=np.float32) * (0.15 * v.noise)
    frames *= 255
    frames += 0.5
    flags = frame_flags(labels, phases) | kinds
    return Rendered(np.clip(frames, 0, 255, out=frames).astype(np.uint8), labels, flags)


def video_rng(seed: int, action_index: int, video_index: int) -> np.random.Generator:
    """The generator of one video, independent of every other video."""
    return np.random.default_rng(np.random.SeedSequence([seed, action_index, video_index]))


def _claim_output(out: Path, videos: set[str], force: bool) -> set[str]:
    """Names of the videos a previous synthetic dataset in `out` wrote (this run replaces or removes them).

    Refuses a non-empty folder that holds no synthetic dataset unless `force`, and, even then, any
    file this run would write over (manifest, provenance, `videos`) that no synth run wrote.
    """
    if out.exists() and not out.is_dir():
        raise VavaError(f"{out}: exists and is not a directory")
    if not out.exists() or not any(out.iterdir()):
        return set()
    previous = _previous_videos(out)
    if previous is None and not force:
        raise VavaError(f"{out}: not empty and holds no synthetic dataset ({PROVENANCE_NAME}); use an empty folder "
                        "(or --force to write beside its files)")
    ours = set()
    if previous is not None:
        ours = {out / MANIFEST_NAME, out / PROVENANCE_NAME, *(out / "videos" / name for name in previous)}
    targets = [out / MANIFEST_NAME, out / PROVENANCE_NAME, *(out / "videos" / name for name in sorted(videos))]
    for target in targets:
        if (target.exists() or target.is_symlink()) and target not in ours:
            raise VavaError(f"{target}: exists and was not written by a synth run; move it away first")
    return previous or set()


def _previous_videos(out: Path) -> set[str] | None:
    """File names in `out/videos` that the synthetic dataset in `out` wrote; None if there is none."""
    marker = out / PROVENANCE_NAME
    try:
        provenance = json.loads(marker.read_bytes()) if marker.is_file() else None
    except (OSError, ValueError):
        provenance = None
    if not isinstance(provenance, dict) or provenance.get("generator") != GENERATOR:
        return None
    if "videos" not in provenance:  # written before synth.json listed its videos: its manifest does
        try:
            return {r.path.name for r in load_folder(out) if r.path.parent == (out / "videos").resolve()}
        except VavaError:
            return set()
    names = provenance["videos"]
    return {n for n in names if _is_video_name(n)} if isinstance(names, list) else set()


def _is_video_name(name: object) -> bool:
    """Whether `name` could be one of our video files: a plain `.mp4` name (never a path)."""
    return isinstance(name, str) and name.endswith(".mp4") and Path(name).name == name and not name.startswith(".")


def _write_provenance(out: Path, config: SynthConfig, videos: set[str]) -> None:
    text = json.dumps({"generator": GENERATOR, "config": asdict(config), "videos": sorted(videos)}, indent=2)
    atomic_write(out / PROVENANCE_NAME, text + "\n")


def _splits(videos: int, val_fraction: float) -> list[str]:
    """Per-action splits: the last videos go to val, at least one train and one val when videos >= 2."""
    val = min(max(round(videos * val_fraction), 1), videos - 1)
    return ["train"] * (videos - val) + ["val"] * val


def synthesize(
    out_dir: str | Path, config: SynthConfig, progress: Callable[[int, int], None] | None = None, *,
    force: bool = False,
) -> list[dict]:
    """Render the dataset into `out_dir` (videos/*.mp4, manifest.jsonl, synth.json); return the entries.

    `progress(done, total)` is called after each video. A previous synthetic dataset in `out_dir`
    is replaced: its manifest is removed first, so an interrupted run leaves no stale manifest, and
    of its videos (listed in its synth.json) those not written again are removed. Nothing else is
    ever removed or overwritten. Any other non-empty folder is refused unless `force`.
    """
    out = Path(out_dir)
    actions = list(ACTIONS)[: config.actions]
    names = {f"{_video_id(action, index)}.mp4" for action in actions for index in range(config.videos)}
    previous = _claim_output(out, names, force)
    videos = out / "videos"
    videos.mkdir(parents=True, exist_ok=True)
    # Until the manifest is written, synth.json lists the previous run's videos too, so that an
    # interrupted run is cleaned up by the next one.
    _write_provenance(out, config, previous | names)
    (out / MANIFEST_NAME).unlink(missing_ok=True)
    total = config.actions * config.videos
    entries: list[dict] = []
    for action_index, action in enumerate(actions):
        phases = ACTIONS[action]
        for index, split in enumerate(_splits(config.videos, config.val_fraction)):
            frames, labels, flags = render_video(action, video_rng(config.seed, action_index, index), config)
            video_id = _video_id(action, index)
            write_video(videos / f"{video_id}.mp4", frames, config.fps)
            entries.append({
                "id": video_id,
                "path": f"videos/{video_id}.mp4",
                "split": split,
                "action": action,
                "labels": labels.tolist(),
                "phases": [*phases, "background"],
                "fps": config.fps,
                "background_label": len(phases),
                "flags": flags.tolist(),
            })
            if progress is not None:
                progress(len(entries), total)
    for stale in previous - names:
        (videos / stale).unlink(missing_ok=True)
    _write_provenance(out, config, names)
    write_manifest(out, entries)
    return entries


def _video_id(action: str, index: int) -> str:
    return f"{action}_{index:03d}"


def write_fixture(out_dir: str | Path) -> None:
    """A tiny wild synthetic dataset in the generic folder format (2 actions x 4 videos at 32 px)."""
    synthesize(out_dir, SynthConfig(actions=2, videos=4, val_fraction=0.25, size=32, frames=(16, 20),
                                    variations=preset("wild", 2)))
