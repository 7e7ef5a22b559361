"""How long training takes: measured on a run's first steps (`StepClock`), or roughly before any run
starts (`rough_seconds_per_step`, for plans of many runs)."""
from __future__ import annotations

import time

import torch

from vava.core.embedder import Embedder
from vava.core.errors import option_name
from vava.core.formatting import duration
from vava.stages.train.config import TrainConfig

TIMED_STEPS = 3        # steps timed after the first (a warm-up) before the estimate is given...
TIMED_SECONDS = 30.0   # ... or as many as fit in this time, when they are slow
CPU_WARNING_SECONDS = 3600.0
ROUGH_FRAMES = 16      # frames the embedder is timed on by `rough_seconds_per_step` (fewer when a step has fewer)


def estimate_line(steps: int, seconds_per_step: float, left: int) -> str:
    """ "1000 steps x 2.10 s/step = 35 min" (plus what is left of it when a run resumes)."""
    line = f"{steps} steps x {seconds_per_step:.2f} s/step = {duration(steps * seconds_per_step)}"
    return line if left == steps else f"{line} ({duration(left * seconds_per_step)} for the {left} steps left)"


def cpu_warning(seconds: float, device: torch.device) -> str | None:
    """The warning for a run that would take over an hour on CPU (None otherwise)."""
    if device.type != "cpu" or seconds <= CPU_WARNING_SECONDS:
        return None
    return (f"warning: about {duration(seconds)} of training on CPU; to try the pipeline, train with "
            f"{option_name('config')} cpu (a few minutes) or fewer {option_name('steps')}, or on a GPU "
            f"({option_name('device')} cuda)")


class StepClock:
    """Times the steps of a run after its first one (a warm-up) and gives, once, the estimate of the
    whole run: after `TIMED_STEPS` timed steps, or `TIMED_SECONDS`, whichever comes first."""

    def __init__(self, start: int, steps: int, device: torch.device):
        self.start, self.steps, self.device = start, steps, device
        self._since: tuple[int, float] | None = None  # (step, time) the timing started at
        self.seconds_per_step: float | None = None

    def tick(self, done: int, now: float | None = None) -> list[str]:
        """Call after each step; the estimate's lines (and a CPU warning) once, when known, else []."""
        now = time.perf_counter() if now is None else now
        if self.seconds_per_step is not None or done >= self.steps:
            return []
        if self._since is None:
            self._since = done, now
            return []
        timed, elapsed = done - self._since[0], now - self._since[1]
        if timed < TIMED_STEPS and elapsed < TIMED_SECONDS:
            return []
        self.seconds_per_step = elapsed / timed
        left = self.steps - self.start
        lines = [f"estimate: {estimate_line(self.steps, self.seconds_per_step, left)}"]
        warning = cpu_warning((self.steps - done) * self.seconds_per_step, self.device)
        return lines + ([warning] if warning else [])


def rough_seconds_per_step(config: TrainConfig, frame_shape: tuple[int, int, int], device: torch.device) -> float:
    """A rough time of one training step of `config` on maps of `frame_shape`, before any run: the embedder's
    forward and backward pass timed on up to `ROUGH_FRAMES` random frames (after an untimed warm-up) and
    scaled to the 2 x batch_pairs x frames_per_video frames of a step. The loss and data loading are left out."""
    step_frames = 2 * config.data.batch_pairs * config.data.frames_per_video
    frames = min(ROUGH_FRAMES, step_frames)
    torch.manual_seed(0)
    embedder = Embedder(frame_shape[0], config.model).to(device)
    maps = torch.randn(frames, config.model.context_frames + 1, *frame_shape, device=device)
    seconds = 0.0
    for _ in range(2):  # the first pass warms up (allocations, kernel choice) and is not counted
        began = time.perf_counter()
        embedder(maps).sum().backward()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        seconds = time.perf_counter() - began
    return seconds * step_frames / frames
