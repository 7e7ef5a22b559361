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

One module per job: `config` (what to generate), `canvas` (drawing and a video's look), `actions` (the
procedures), `timeline` (which phase each frame shows), `background` (what background frames show and
what wanders through the scene), `render` (one video) and `writer` (the dataset on disk).
"""
from __future__ import annotations

from vava.pipeline.datasets.synthetic.actions import ACTIONS
from vava.pipeline.datasets.synthetic.background import KIND_CHANCES
from vava.pipeline.datasets.synthetic.config import (
    BENCHMARK,
    BENCHMARKS,
    CLEAN,
    CLEAN_V2,
    FRAMES,
    MAX_BACKGROUND_SHARE,
    MAX_FPS,
    MAX_RENDER_BYTES,
    MIN_PROCEDURE_FRAMES,
    PRESETS,
    STRENGTH,
    WILD,
    WILD_V2,
    SynthConfig,
    Variations,
    preset,
)
from vava.pipeline.datasets.synthetic.render import Rendered, render_video, video_rng
from vava.pipeline.datasets.synthetic.writer import GENERATOR, PROVENANCE_NAME, synthesize, write_fixture

__all__ = ["ACTIONS", "BENCHMARK", "BENCHMARKS", "CLEAN", "CLEAN_V2", "FRAMES", "GENERATOR", "KIND_CHANCES",
           "MAX_BACKGROUND_SHARE", "MAX_FPS", "MAX_RENDER_BYTES", "MIN_PROCEDURE_FRAMES", "PRESETS", "PROVENANCE_NAME",
           "STRENGTH", "WILD", "WILD_V2", "Rendered", "SynthConfig", "Variations", "preset", "render_video",
           "synthesize", "video_rng", "write_fixture"]
