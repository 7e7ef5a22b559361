"""What to generate: `SynthConfig`, the `Variations` of its videos and their clean and wild presets."""
from __future__ import annotations

from dataclasses import dataclass, replace
from types import MappingProxyType
from typing import ClassVar

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
from vava.pipeline.datasets.synthetic.actions import ACTIONS

MIN_PROCEDURE_FRAMES = 16
MAX_FPS = 1000.0
BENCHMARKS = (1, 2, 3)
MAX_BACKGROUND_SHARE = 0.75  # benchmark 2: background frames per video at most
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
    is the version (see the package docstring).
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
        """Most frames a video can have: the longest procedure plus the most background (`timeline`'s
        `_background_slots`, `_background_v2`)."""
        high, background = self.frames[1], self.variations.background
        if not background:
            return high
        if self.benchmark == 1:
            return high + 3 * max(2, round(high * background * 0.5))
        return high + background_frames(high, min(background, MAX_BACKGROUND_SHARE), 4)


def background_frames(length: int, share: float, slots: int) -> int:
    """Background frames that make `share` of a video with `length` procedure frames (2 per slot at least)."""
    return max(2 * slots, round(length * share / (1 - share)))
