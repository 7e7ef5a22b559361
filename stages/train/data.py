"""Feeding training steps from the feature cache: three data paths, one batch format.

- `zarr`: DataLoader workers read the sampled frames from the store and prefetch batches;
- `host`: the whole split is loaded into host memory once and batches are gathered there;
- `device`: the whole split lives on the GPU and batches are gathered on the device.
`auto` picks the fastest one the features fit in.
"""
from __future__ import annotations

import math
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from vava.cache.store import CachedVideo, FeatureSet
from vava.core.embedder import EmbedderConfig, context_indices
from vava.core.errors import VavaError
from vava.stages.train.config import TrainConfig
from vava.stages.train.sampler import PairDraw, PairSampler

DATA_PATHS = ("auto", "zarr", "host", "device")


@dataclass
class FeatureBatch:
    """What one step consumes, before embedding."""

    maps: Tensor           # [B, 2, T, K, C, H, W] float16 conv4 maps; K = context frames + the frame
    frame_indices: Tensor  # [B, 2, T] long
    video_lengths: Tensor  # [B, 2] long
    labels: Tensor         # [B, 2, T] long: `PhaseClasses` of the frames (-1 unknown)

    def to(self, device: torch.device) -> FeatureBatch:
        move = {"device": device, "non_blocking": True}
        return FeatureBatch(self.maps.to(**move), self.frame_indices.to(**move), self.video_lengths.to(**move),
                            self.labels.to(**move))


@dataclass(frozen=True)
class Context:
    """The past frames stacked with each sampled frame: how many, and each video's stride in frames."""

    frames: int
    strides: dict[str, int]

    @classmethod
    def of(cls, model: EmbedderConfig, videos: list[CachedVideo]) -> Context:
        """`model`'s context for `videos` (a video without a frame rate is named when seconds need one)."""
        return cls(model.context_frames, {v.id: model.stride(v.fps, v.id) for v in videos})

    def stride(self, draw: PairDraw) -> Tensor:
        """[B, 2, 1, 1] strides of the drawn videos, to broadcast over their [B, 2, T] frame indices."""
        return torch.tensor([[self.strides[v] for v in pair] for pair in draw.video_ids])[:, :, None, None]


@dataclass(frozen=True)
class PhaseClasses:
    """The training class of each labelled frame: every action's phases get classes of their own (its
    labels plus the action's offset), so phase k of two actions are two classes of one classifier."""

    offsets: dict[str, int]  # video id -> the offset of its action
    count: int

    @classmethod
    def of(cls, feature_set: FeatureSet, videos: list[CachedVideo]) -> PhaseClasses:
        phases: dict[str, int] = {}
        for video in videos:
            phases[video.action] = max(phases.get(video.action, 0), int(feature_set.labels(video.id).max()) + 1)
        starts = dict(zip(sorted(phases), np.cumsum([0, *(phases[a] for a in sorted(phases))]).tolist()))
        return cls({v.id: starts[v.action] for v in videos}, sum(phases.values()))

    def labels(self, feature_set: FeatureSet, video_id: str) -> np.ndarray:
        """The classes of a video's frames (unknown frames stay -1)."""
        labels = feature_set.labels(video_id)
        return np.where(labels >= 0, labels + self.offsets[video_id], labels)


class MemoryFeatures:
    """Every frame of the given videos in one [F, C, H, W] tensor; a batch is one gather."""

    def __init__(self, feature_set: FeatureSet, videos: list[CachedVideo], classes: PhaseClasses, device: torch.device):
        self.offsets = {}
        start = 0
        for video in videos:
            self.offsets[video.id] = start
            start += video.num_frames
        self.lengths = {v.id: v.num_frames for v in videos}
        self.maps = torch.cat([torch.from_numpy(feature_set.read(v.id)) for v in videos]).to(device)
        self.labels = torch.cat([torch.from_numpy(classes.labels(feature_set, v.id)) for v in videos]).to(device)

    def gather(self, draw: PairDraw, context: Context) -> FeatureBatch:
        device = self.maps.device
        indices = torch.from_numpy(draw.frame_indices).to(device)
        starts = torch.tensor([[self.offsets[v] for v in pair] for pair in draw.video_ids], device=device)
        stacks = context_indices(indices, context.frames, context.stride(draw).to(device)) + starts[:, :, None, None]
        maps = self.maps[stacks.flatten()].view(*stacks.shape, *self.maps.shape[1:])
        labels = self.labels[(indices + starts[:, :, None]).flatten()].view(indices.shape)
        lengths = torch.tensor([[self.lengths[v] for v in pair] for pair in draw.video_ids], device=device)
        return FeatureBatch(maps, indices, lengths, labels)


class ZarrFeatures:
    """Reads only the sampled frames (and their context) of each video from the store.

    The store is opened lazily, so each DataLoader worker process opens its own handle.
    """

    def __init__(self, path: Path, videos: list[CachedVideo], classes: PhaseClasses):
        self.path, self.classes = path, classes
        self.lengths = {v.id: v.num_frames for v in videos}
        self._feature_set: FeatureSet | None = None
        self._labels: dict[str, np.ndarray] = {}

    def gather(self, draw: PairDraw, context: Context) -> FeatureBatch:
        if self._feature_set is None:
            self._feature_set = FeatureSet.open(self.path)
        indices = torch.from_numpy(draw.frame_indices)
        stacks = context_indices(indices, context.frames, context.stride(draw))
        maps, labels = [], []
        for b, pair in enumerate(draw.video_ids):
            for v, video_id in enumerate(pair):
                maps.append(torch.from_numpy(self._feature_set.read(video_id, stacks[b, v].flatten().numpy())))
                if video_id not in self._labels:
                    self._labels[video_id] = self.classes.labels(self._feature_set, video_id)
                labels.append(torch.from_numpy(self._labels[video_id][draw.frame_indices[b, v]]))
        maps_t = torch.stack(maps).view(*stacks.shape, *maps[0].shape[1:])
        lengths = torch.tensor([[self.lengths[v] for v in pair] for pair in draw.video_ids])
        return FeatureBatch(maps_t, indices, lengths, torch.stack(labels).view(indices.shape))


@dataclass
class _ReadError:
    """A `VavaError` met in a DataLoader worker, handed over as data: the loader would re-raise the
    exception itself wrapped in a multi-line message with the worker's traceback."""

    message: str


class _Steps(Dataset):
    """Item i is the batch of step `start + i`, so any worker can build any step."""

    def __init__(self, source: ZarrFeatures, sampler: PairSampler, start: int, stop: int, context: Context):
        self.source, self.sampler, self.start, self.stop, self.context = source, sampler, start, stop, context

    def __len__(self) -> int:
        return self.stop - self.start

    def __getitem__(self, i: int) -> FeatureBatch | _ReadError:
        try:
            return self.source.gather(self.sampler.draw(self.start + i), self.context)
        except VavaError as err:  # e.g. a damaged video
            return _ReadError(str(err))


STD_FLOOR = 1e-3  # of the mean channel sd: channels constant over the training split are only centred


def channel_statistics(feature_set: FeatureSet, videos: list[CachedVideo],
                       chunk_frames: int = 256) -> tuple[Tensor, Tensor]:
    """Per channel, the mean and standard deviation (ddof 0) of the maps of every frame of `videos` over
    frames and positions, read `chunk_frames` at a time; deviations are raised to `STD_FLOOR` of their mean."""
    count, sums, squares = 0, torch.zeros((), dtype=torch.float64), torch.zeros((), dtype=torch.float64)
    for video in videos:
        for start in range(0, video.num_frames, chunk_frames):
            maps = torch.from_numpy(feature_set.read(video.id, slice(start, start + chunk_frames))).double()
            count += maps.numel() // maps.shape[1]
            sums = sums + maps.sum(dim=(0, 2, 3))
            squares = squares + maps.square().sum(dim=(0, 2, 3))
    mean = sums / count
    std = (squares / count - mean.square()).clamp_min(0).sqrt()
    return mean.float(), std.clamp_min(max(STD_FLOOR * float(std.mean()), 1e-6)).float()


def _quiet_worker(worker_id: int) -> None:
    """Silence a loader worker's own stderr. What goes wrong in it reaches the main process: a damaged video
    as `_ReadError`, any other error re-raised there by the DataLoader. What a worker would print itself is
    the noise of its shutdown, e.g. tracebacks that zarr's event loop logs for reads still in flight when the
    main process stops on an error."""
    sys.stderr = open(os.devnull, "w")  # noqa: SIM115 - for the worker's lifetime


def split_bytes(feature_set: FeatureSet, videos: list[CachedVideo]) -> int:
    if not videos:
        return 0
    frame = int(np.prod(feature_set.frame_shape(videos[0].id))) * 2  # float16
    return frame * sum(v.num_frames for v in videos)


def choose_data_path(requested: str, needed_bytes: int, device: torch.device) -> str:
    """The requested path, or for `auto` the fastest one the features fit in (half of free memory)."""
    if requested not in DATA_PATHS:
        raise VavaError(f"data.path: {requested!r} is not one of {', '.join(DATA_PATHS)}")
    if requested == "device" and device.type != "cuda":
        raise VavaError("data.path: 'device' needs a CUDA device (use host or zarr)")
    if requested != "auto":
        return requested
    if device.type == "cuda" and needed_bytes < free_memory(device) // 2:
        return "device"
    return "host" if needed_bytes < free_memory(torch.device("cpu")) // 2 else "zarr"


def free_memory(device: torch.device) -> int:
    """Bytes free on a CUDA device, or of available host memory for any other device."""
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0]
    return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def step_bytes(frame_shape: tuple[int, ...], config: TrainConfig) -> int:
    """An estimate of the memory one training step takes, in bytes (float32).

    Counted: the batch's stacked conv4 maps (B x 2 x T stacks of K maps), the activations each
    Conv3d layer keeps for the backward pass (its output and the BatchNorm output) and one
    T x T frame-similarity matrix per pair, as the alignment objectives build. Everything else
    (weights, gradients, the objectives' other buffers) comes on top.
    """
    pairs, frames = config.data.batch_pairs, config.data.frames_per_video
    channels, *spatial = frame_shape
    per_stack = (config.model.context_frames + 1) * math.prod(spatial)
    per_stack *= channels + 2 * config.model.conv_layers * config.model.conv_channels
    return 4 * (pairs * 2 * frames * per_stack + pairs * frames * frames)


def check_step_fits(frame_shape: tuple[int, ...], config: TrainConfig, device: torch.device) -> None:
    """Refuse batch sizes whose step cannot fit in the memory free on `device`, naming the limit."""
    needed, free = step_bytes(frame_shape, config), free_memory(device)
    if needed > free:
        raise VavaError(f"data.batch_pairs={config.data.batch_pairs}, data.frames_per_video="
                        f"{config.data.frames_per_video}: one training step needs about {needed / 2**30:.3g} GiB, "
                        f"more than the {free / 2**30:.3g} GiB free on {device}; lower them")


def batches(feature_set: FeatureSet, videos: list[CachedVideo], sampler: PairSampler, path: str,
            context: Context, classes: PhaseClasses, start: int, stop: int, device: torch.device,
            workers: int) -> Iterator[FeatureBatch]:
    """Batches of steps start..stop-1, already on `device`."""
    if path == "zarr":
        loader = DataLoader(_Steps(ZarrFeatures(feature_set.path, videos, classes), sampler, start, stop, context),
                            batch_size=None, num_workers=workers, prefetch_factor=4 if workers else None,
                            pin_memory=device.type == "cuda", worker_init_fn=_quiet_worker if workers else None)
        for batch in loader:
            if isinstance(batch, _ReadError):
                raise VavaError(batch.message)
            yield batch.to(device)
        return
    source = MemoryFeatures(feature_set, videos, classes, device if path == "device" else torch.device("cpu"))
    for step in range(start, stop):
        yield source.gather(sampler.draw(step), context).to(device)
