"""One video rendered: its frames, per-frame labels and flags, from its own generator."""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from vava.core.errors import VavaError
from vava.core.records import BACKGROUND_KINDS, frame_flags
from vava.pipeline.datasets.synthetic.actions import ACTION_SPECS, ACTIONS
from vava.pipeline.datasets.synthetic.background import (
    background_kinds,
    draw_cutaway,
    draw_distractor,
    draw_hand,
    draw_passer_by,
    hand_shown,
)
from vava.pipeline.datasets.synthetic.canvas import Canvas, camera_drift, draw_look, fill_backdrop, scene_coordinates
from vava.pipeline.datasets.synthetic.config import SynthConfig
from vava.pipeline.datasets.synthetic.timeline import TIMELINES

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
    if action not in ACTION_SPECS:
        raise VavaError(f"unknown synthetic action {action!r} (known: {', '.join(ACTIONS)})")
    spec, v, phases = ACTION_SPECS[action], config.variations, len(ACTION_SPECS[action].phases)
    rngs = dict(zip(_STREAMS, rng.spawn(len(_STREAMS))))
    labels, phase, progress = TIMELINES[config.benchmark](phases, config, rngs)
    kinds = background_kinds(labels, phases, rngs["kinds"]) if config.benchmark == 3 else np.zeros_like(labels,
                                                                                                           np.uint8)
    look = draw_look(v.appearance, rngs["look"])
    in_scene = labels < phases if config.benchmark == 1 else kinds != BACKGROUND_KINDS["cutaway"]
    drift = camera_drift(len(labels), v.jitter, rngs["motion"]) if config.benchmark >= 2 else 0.0
    x, y = scene_coordinates(len(labels), config.size, look, v.jitter, rngs["camera"], drift)
    frames = np.empty((len(labels), config.size, config.size, 3), dtype=np.float32)
    pixel = 1.0 / (config.size * look.zoom)
    scene = Canvas.blank(x[in_scene], y[in_scene], pixel)
    fill_backdrop(scene, look.background, look.texture)
    spec.draw(scene, phase[in_scene], progress[in_scene], look)
    if config.benchmark >= 2:
        shown = hand_shown(labels, phases, v.background, rngs["motion"])
        draw_hand(scene, shown[in_scene], look, rngs["motion"])
    if config.benchmark == 3:
        draw_passer_by(scene, kinds[in_scene] == BACKGROUND_KINDS["distraction"], rngs["kinds"])
    frames[in_scene] = scene.image
    if not in_scene.all():
        other = Canvas.blank(x[~in_scene], y[~in_scene], pixel)
        times = np.flatnonzero(~in_scene).astype(np.float32)
        if config.benchmark == 1:
            draw_distractor(other, times, rngs["background"])
        else:
            draw_cutaway(other, times, rngs["kinds"])
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
