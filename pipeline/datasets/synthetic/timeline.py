"""Timelines: which phase, and how far into it, each frame of a video shows, and where background comes."""
from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from vava.pipeline.datasets.synthetic.config import MAX_BACKGROUND_SHARE, SynthConfig, background_frames

_MIN_PHASE_FRAMES = 2
_MAX_EXTRA_SEGMENTS = 3  # benchmark 2: repeats a procedure may gain (each phase needs _MIN_PHASE_FRAMES)


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


class Timeline(NamedTuple):
    labels: np.ndarray  # (T,) phase label, `phases` for background
    phase: np.ndarray  # (T,) the phase whose state a frame shows (benchmark 1: its label)
    progress: np.ndarray  # (T,) float32 progress through that phase, in [0, 1]


def _timeline_v1(phases: int, config: SynthConfig, rngs: dict[str, np.random.Generator]) -> Timeline:
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
    return Timeline(labels, labels, progress.astype(np.float32))


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


def _background_v2(length: int, strength: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(insert positions in the procedure, frame counts) of the background stretches: at the start, at one
    or two points in the middle and at the end, their lengths shared at random (flat Dirichlet)."""
    share = min(strength * rng.uniform(0.4, 1.0), MAX_BACKGROUND_SHARE)
    middle = np.sort(rng.uniform(0.15, 0.85, 1 + int(rng.random() < 0.5)) * length).astype(np.int64)
    at = np.r_[0, middle, length]
    counts = _split(background_frames(length, share, len(at)), rng.dirichlet(np.ones(len(at))), 2)
    return (at, counts) if strength else (at[:0], counts[:0])


def _timeline_v2(phases: int, config: SynthConfig, rngs: dict[str, np.random.Generator]) -> Timeline:
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
    return Timeline(labels=np.insert(steps, inserted, phases),
                     phase=np.insert(steps, inserted, steps[before]),
                     progress=np.insert(progress, inserted, np.where(inserted > 0, progress[before], 0.0))
                     .astype(np.float32))


TIMELINES = {1: _timeline_v1, 2: _timeline_v2, 3: _timeline_v2}
