"""TCC: temporal cycle-consistency (Dwibedi et al., CVPR 2019); docs/method.md#tcc.

For every ordered pair (i, j) of videos in a group and every frame k of video i: the soft nearest
neighbour of x^i_k in video j, and its similarities back to the frames of video i ("cycle-back
logits"), which should point at frame k. Deterministic (the official default): all ordered pairs at once,
vectorised over all ordered pairs. Stochastic: random cycles of videos and random start frames.

Groups (`grouping`): the official pipeline feeds TCC a batch of videos of one action (B = 2 by default).
A PairBatch may mix actions across its pairs, so by default each pair is one TCC batch of 2 videos
(exactly the official default) and the loss is the mean over all cycle-back rows of all pairs, which is
the mean of the per-pair losses. `grouping="batch"` treats all 2B videos as one TCC batch (datasets with a
single action: B pairs give TCC's batch of 2B videos).

Deliberate deviations from the official code (docs/method.md#tcc):
  * the stochastic variant draws every cycle from a real random permutation of the group (the official
    generator only ever trains the cycle 0 -> 1 -> 0); draws use torch's global CPU generator, so a
    seeded run (and a resumed one, whose RNG state is restored) repeats them;
  * sigma^2 is clamped at `variance_floor` (the official code takes log 0 when a softmax turns one-hot).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor

from vava.core.validation import FLAG, UNIT_INTERVAL, checked, integer, number, one_of, validate
from vava.stages.train.objectives.base import Objective, PairBatch, detached

LOSS_TYPES = ("regression_mse_var", "regression_mse", "regression_huber", "classification")
SIMILARITIES = ("l2", "cosine")
GROUPINGS = ("pair", "batch")


@dataclass(frozen=True)
class TccConfig:
    """TCC options; defaults are the official training config (docs/method.md#tcc)."""

    # regression_mse_var | regression_mse | regression_huber | classification
    loss_type: str = checked(one_of(*LOSS_TYPES), "regression_mse_var")
    similarity: str = checked(one_of(*SIMILARITIES), "l2")  # l2 (negative squared distance) | cosine (raw dot product)
    temperature: float = checked(number(above=0), 0.1)      # similarities are divided by D * temperature
    variance_lambda: float = checked(number(at_least=0), 0.001)  # weight of log sigma^2 in regression_mse_var
    # classification only (Keras convention: eps / T on every class)
    label_smoothing: float = checked(UNIT_INTERVAL, 0.1)
    huber_delta: float = checked(number(above=0), 0.1)      # regression_huber only
    normalize_indices: bool = checked(FLAG, True)           # regression targets are frame index / video length
    stochastic: bool = checked(FLAG, False)                 # random cycles instead of all ordered pairs
    cycle_length: int = checked(integer(2), 2)              # stochastic only: videos visited before returning
    # stochastic only: int(V * T * fraction) cycles per group of V videos
    cycle_fraction: float = checked(number(above=0), 1.0)
    # pair: each pair is a TCC batch | batch: all 2B videos are one
    grouping: str = checked(one_of(*GROUPINGS), "pair")
    variance_floor: float = checked(number(above=0), 1e-12)  # lower clamp of sigma^2 (NaN guard)

    def __post_init__(self) -> None:
        validate(self)


def similarity(x: Tensor, y: Tensor, kind: str, temperature: float) -> Tensor:
    """Scaled similarities [..., N, d] x [..., M, d] -> [..., N, M], divided by d * temperature.

    l2: minus the squared distance |x|^2 + |y|^2 - 2 x.y clamped at 0; cosine: the raw dot product (no
    normalisation, as in the official code). Leading dimensions broadcast.
    """
    scale = x.shape[-1] * temperature
    dot = x @ y.transpose(-1, -2)
    if kind == "l2":
        squared = (x * x).sum(-1)[..., :, None] + (y * y).sum(-1)[..., None, :] - 2 * dot
        return -squared.clamp_min(0) / scale
    return dot / scale


def normalised_times(steps: Tensor | None, seq_lens: Tensor | None, shape: torch.Size, normalize: bool,
                     like: Tensor) -> Tensor:
    """Regression targets [..., T]: steps / seq_len (or raw steps); steps 0..T-1 and seq_len T if omitted."""
    frames = shape[-1]
    if steps is None:
        steps = torch.arange(frames, device=like.device).expand(shape)
        seq_lens = torch.full(shape[:-1], frames, device=like.device)
    times = steps.to(like.dtype)
    if normalize:
        times = times / seq_lens.to(like.dtype)[..., None]
    return times


def cycle_back_loss(logits: Tensor, target: Tensor, times: Tensor,
                    config: TccConfig) -> tuple[Tensor, dict[str, Tensor]]:
    """Mean loss of cycle-back rows: logits [R, T], target frame [R] (long), times [R, T] of the start video."""
    frames = logits.shape[-1]
    if config.loss_type == "classification":
        eps = config.label_smoothing
        smoothed = F.one_hot(target, frames).to(logits.dtype) * (1 - eps) + eps / frames
        loss = -(smoothed * torch.log_softmax(logits, dim=-1)).sum(dim=-1).mean()
        return loss, {"tcc": loss}
    beta = torch.softmax(logits, dim=-1)
    predicted = (beta * times).sum(dim=-1)
    error = times.gather(-1, target[:, None])[:, 0] - predicted
    if config.loss_type == "regression_mse":
        rows = error ** 2
    elif config.loss_type == "regression_huber":
        delta, size = config.huber_delta, error.abs()
        rows = torch.where(size <= delta, 0.5 * error ** 2, delta * size - 0.5 * delta ** 2)
    else:
        variance = (beta * (times - predicted[:, None]) ** 2).sum(dim=-1).clamp_min(config.variance_floor)
        log_variance = torch.log(variance)
        rows = error ** 2 / variance + config.variance_lambda * log_variance
        loss = rows.mean()
        return loss, {"tcc": loss, "mse": (error ** 2).mean(), "log_variance": log_variance.mean()}
    loss = rows.mean()
    return loss, {"tcc": loss, "mse": (error ** 2).mean()}


def deterministic_rows(z: Tensor, times: Tensor, config: TccConfig) -> tuple[Tensor, Tensor, Tensor]:
    """Cycle-back rows of every ordered pair (i != j) in every group: z [G, V, T, D], times [G, V, T].

    Returns logits [G*V*(V-1)*T, T], target frames and the start video's times, rows ordered by group,
    then i, then j, then k.
    """
    groups, videos, frames, _ = z.shape
    forward = similarity(z[:, :, None], z[:, None, :], config.similarity, config.temperature)  # [G, V, V, T, T]
    nearest = torch.softmax(forward, dim=-1) @ z[:, None]                                        # [G, V, V, T, D]
    back = similarity(nearest, z[:, :, None], config.similarity, config.temperature)            # [G, V, V, T, T]
    off = ~torch.eye(videos, dtype=torch.bool, device=z.device)
    logits = back[:, off].reshape(-1, frames)
    target = torch.arange(frames, device=z.device).repeat(groups * videos * (videos - 1))
    row_times = times[:, :, None, None, :].expand(groups, videos, videos, frames, frames)[:, off].reshape(-1, frames)
    return logits, target, row_times


def random_cycles(groups: int, videos: int, frames: int, config: TccConfig,
                  device: torch.device) -> tuple[Tensor, Tensor]:
    """Cycles [G, C, L+1] (distinct videos from a random permutation, back to the first) and start frames [G, C]."""
    if config.cycle_length > videos:
        raise ValueError(f"cycle_length is {config.cycle_length} but a group has only {videos} videos")
    count = max(1, int(videos * frames * config.cycle_fraction))
    order = torch.rand(groups, count, videos).argsort(dim=-1)[..., :config.cycle_length]
    cycles = torch.cat([order, order[..., :1]], dim=-1)
    start = torch.randint(frames, (groups, count))
    return cycles.to(device), start.to(device)


def stochastic_rows(z: Tensor, times: Tensor, config: TccConfig) -> tuple[Tensor, Tensor, Tensor]:
    """Cycle-back rows of random cycles: logits [G*C, T], start frames, start-video times."""
    groups, videos, frames, dim = z.shape
    cycles, start = random_cycles(groups, videos, frames, config, z.device)
    group = torch.arange(groups, device=z.device)[:, None]
    query = z[group, cycles[..., 0], start][..., None, :]      # [G, C, 1, D]
    for hop in range(1, cycles.shape[-1]):
        frames_of_hop = z[group, cycles[..., hop]]              # [G, C, T, D]
        logits = similarity(query, frames_of_hop, config.similarity, config.temperature)  # [G, C, 1, T]
        query = torch.softmax(logits, dim=-1) @ frames_of_hop
    row_times = times[group, cycles[..., 0]]                    # [G, C, T]
    return logits.reshape(-1, frames), start.reshape(-1), row_times.reshape(-1, frames)  # last hop: back to c0


def tcc_loss(z: Tensor, steps: Tensor | None = None, seq_lens: Tensor | None = None,
             config: TccConfig = TccConfig()) -> tuple[Tensor, dict[str, Tensor]]:
    """TCC loss of groups of videos z [G, V, T, D] (or one group [V, T, D]); steps [.., V, T], seq_lens [.., V]."""
    if z.dim() == 3:
        z = z[None]
        steps = None if steps is None else steps[None]
        seq_lens = None if seq_lens is None else seq_lens[None]
    if z.shape[1] < 2:
        raise ValueError(f"TCC needs at least 2 videos per group, got {z.shape[1]}")
    times = normalised_times(steps, seq_lens, z.shape[:-1], config.normalize_indices, z)
    rows = stochastic_rows(z, times, config) if config.stochastic else deterministic_rows(z, times, config)
    return cycle_back_loss(*rows, config)


def group_videos(batch: PairBatch, grouping: str) -> tuple[Tensor, Tensor, Tensor]:
    """Embeddings [G, V, T, D], frame indices [G, V, T] and lengths [G, V] of a PairBatch's groups:
    pair -> G = B groups of V = 2; batch -> one group of all 2B videos (pair-major order)."""
    z, steps, lengths = batch.embeddings, batch.frame_indices, batch.video_lengths
    if grouping == "batch":
        return z.flatten(0, 1)[None], steps.flatten(0, 1)[None], lengths.flatten(0, 1)[None]
    return z, steps, lengths


class TccLoss(Objective):
    """TCC on the groups of a PairBatch (each pair by default); see the module docstring."""

    name: ClassVar[str] = "tcc"
    config_class: ClassVar[type] = TccConfig

    def forward(self, batch: PairBatch) -> tuple[Tensor, dict[str, Tensor]]:
        z, steps, lengths = group_videos(batch, self.config.grouping)
        loss, components = tcc_loss(z, steps, lengths, self.config)
        return loss, detached(components)


__all__ = ["TccConfig", "TccLoss", "cycle_back_loss", "group_videos", "similarity", "tcc_loss"]
