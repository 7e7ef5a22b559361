"""The frame embedder of the VAVA supplement's Table 9 (TCC's ConvEmbedder), on cached conv4 maps."""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn import functional as F

from vava.core.errors import VavaError
from vava.core.validation import FLAG, at_least, checked, number, optional, validate


@dataclass(frozen=True)
class EmbedderConfig:
    """Sizes of the embedder. Defaults are Table 9: two 3x3x3 Conv3d of 512, one fc of 512, 128-d.

    `context_frames` past frames, `context_seconds` apart (converted to frames with each video's
    frame rate, Table 9's 0.5 s by default) or `context_stride` frames apart when that is set, are
    stacked with each frame (clamped at frame 0, never future frames). With `standardize` the input
    maps are z-scored per channel with statistics of the training split, which the network keeps
    as buffers (so every checkpoint carries them).
    """

    conv_channels: int = checked(at_least(1), 512)
    conv_layers: int = checked(at_least(1), 2)
    fc_channels: int = checked(at_least(1), 512)
    fc_layers: int = checked(at_least(0), 1)
    embedding_dim: int = checked(at_least(1), 128)
    dropout: float = checked(number(at_least=0, below=1, phrase="in [0, 1)"), 0.1)
    l2_normalize: bool = checked(FLAG, False)
    context_frames: int = checked(at_least(0), 1)
    context_seconds: float = checked(number(above=0, at_most=3600, phrase="in (0, 3600] seconds"), 0.5)
    context_stride: int | None = checked(optional(at_least(1), "an integer >= 1 or null"), None)
    standardize: bool = checked(FLAG, False)

    def __post_init__(self) -> None:
        validate(self)

    def stride(self, fps: float | None, video: str) -> int:
        """Frames between the stacked frames of video `video` (named in the error) at `fps`:
        `context_stride` when set, else `context_seconds` x fps rounded, at least 1."""
        if self.context_stride is not None or not self.context_frames:
            return self.context_stride or 1
        if fps is None or not math.isfinite(fps) or fps <= 0:
            raise VavaError(f"video {video!r} has no frame rate, so model.context_seconds cannot be converted to "
                            "frames: set model.context_stride (frames) or model.context_frames=0")
        return max(1, round(self.context_seconds * fps))


def context_indices(indices: Tensor, context_frames: int, stride: int | Tensor) -> Tensor:
    """[...] frame indices -> [..., context_frames + 1]: t - k*stride for k = context..0, clamped at 0.

    `stride` is one number, or a tensor that broadcasts against `indices[..., None]` (one per video).
    """
    offsets = torch.arange(context_frames, -1, -1, device=indices.device) * stride
    return (indices.unsqueeze(-1) - offsets).clamp_min(0)


def shallow_conv3d(conv: nn.Conv3d, x: Tensor) -> Tensor:
    """`conv(x)` for the embedder's 3x3x3, padding-1 Conv3d; for a depth K of 1 or 2 as one 2D convolution.

    Output depth d sees input depth k through the kernel's depth tap k - d + 1, so stacking the K
    depths along channels turns the layer into a conv2d with a banded [K*out, K*in, 3, 3] weight.
    The result is the same up to float rounding and skips the multiplications by the depth padding;
    on CPU, forward and backward, it is 1.7-4.8x faster than the Conv3d for K = 1 and 1.1-2.2x for
    K = 2 (bench/bench_embedder.py). From K = 3 on, the Conv3d is as fast or faster.
    """
    n, channels, depth, height, width = x.shape
    if depth > 2:
        return conv(x)
    out = conv.out_channels
    taps = torch.arange(depth, device=x.device)[None, :] - torch.arange(depth, device=x.device)[:, None] + 1
    banded = conv.weight[:, :, taps]  # [out, in, d, k, 3, 3]
    banded = banded.permute(2, 0, 3, 1, 4, 5).reshape(depth * out, depth * channels, 3, 3)
    bias = conv.bias.repeat(depth) if conv.bias is not None else None
    y = F.conv2d(x.transpose(1, 2).reshape(n, depth * channels, height, width), banded, bias, padding=1)
    return y.view(n, depth, out, height, width).transpose(1, 2)


class Embedder(nn.Module):
    """[N, K, C, H, W] stacks of K = context + 1 conv4 maps (oldest first) -> [N, D] embeddings."""

    def __init__(self, in_channels: int, config: EmbedderConfig):
        super().__init__()
        self.config = config
        convs: list[nn.Module] = []
        channels = in_channels
        for _ in range(config.conv_layers):
            convs += [nn.Conv3d(channels, config.conv_channels, kernel_size=3, padding=1),
                      nn.BatchNorm3d(config.conv_channels), nn.ReLU(inplace=True)]
            channels = config.conv_channels
        self.convs = nn.Sequential(*convs)
        fcs: list[nn.Module] = []
        for _ in range(config.fc_layers):
            fcs += [nn.Dropout(config.dropout), nn.Linear(channels, config.fc_channels), nn.ReLU(inplace=True)]
            channels = config.fc_channels
        self.fcs = nn.Sequential(*fcs)
        self.embedding = nn.Linear(channels, config.embedding_dim)
        for module in self.modules():
            if isinstance(module, nn.Conv3d):
                nn.init.kaiming_normal_(module.weight, nonlinearity="relu")  # He-normal, as TCC
                nn.init.zeros_(module.bias)
        if config.standardize:  # set by the trainer from the training split (`set_input_statistics`)
            self.register_buffer("input_mean", torch.zeros(in_channels))
            self.register_buffer("input_std", torch.ones(in_channels))

    def set_input_statistics(self, mean: Tensor, std: Tensor) -> None:
        """The per-channel mean and standard deviation that `standardize` removes from the input maps."""
        self.input_mean.copy_(mean)
        self.input_std.copy_(std)

    def forward(self, maps: Tensor) -> Tensor:
        return self.head(self.pool(maps))

    def pool(self, maps: Tensor) -> Tensor:
        """[N, K, C, H, W] maps -> [N, conv_channels]: the convolutions, max-pooled over time and space."""
        if self.config.standardize:
            maps = (maps - self.input_mean[:, None, None]) / self.input_std[:, None, None]
        x = maps.transpose(1, 2)  # [N, C, K, H, W]: time becomes the 3D depth axis
        for layer in self.convs:
            x = shallow_conv3d(layer, x) if isinstance(layer, nn.Conv3d) else layer(x)
        return x.amax(dim=(2, 3, 4))

    def head(self, pooled: Tensor) -> Tensor:
        """[N, conv_channels] pooled features -> [N, D] embeddings: the fully connected layers."""
        x = self.embedding(self.fcs(pooled))
        return F.normalize(x, dim=-1) if self.config.l2_normalize else x


class MapSource(Protocol):
    """Where a video's conv4 maps are read from (a cached feature set, or maps held in memory)."""

    def read(self, video_id: str, indices: slice) -> np.ndarray: ...


class VideoLength(Protocol):
    id: str
    num_frames: int
    fps: float | None


NO_CONTEXT = EmbedderConfig(context_frames=0)  # the input of embedders that see one frame's maps alone


@torch.inference_mode()
def embed_video(source: MapSource, video: VideoLength, embed_maps: Callable[[torch.Tensor], torch.Tensor],
                config: EmbedderConfig, chunk_frames: int, device: torch.device) -> np.ndarray:
    """(T, D) float32 embeddings of every frame, computed `chunk_frames` at a time.

    Each chunk reads only the frames it needs from `source` (a feature set, or maps in memory): its
    own and their past context frames (`config`'s, converted with the video's frame rate).
    """
    context = (config.context_frames, config.stride(video.fps, video.id))
    rows = []
    for start in range(0, video.num_frames, chunk_frames):
        stop = min(start + chunk_frames, video.num_frames)
        stacks = context_indices(torch.arange(start, stop), *context)  # [n, K]
        first = int(stacks.min())
        maps = torch.from_numpy(source.read(video.id, slice(first, stop))).to(device)
        embedded = embed_maps(maps[stacks - first].float())
        if not torch.isfinite(embedded).all():
            raise VavaError(f"video {video.id!r}: non-finite embeddings in frames {start}..{stop - 1}")
        rows.append(embedded.float().cpu().numpy())
    return np.concatenate(rows)
