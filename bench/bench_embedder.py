"""Embedder forward + backward: the 2D-convolution path for shallow stacks against plain Conv3d layers.

`Embedder.forward` runs each 3x3x3 Conv3d over a stack of K <= 2 frames as one conv2d with a
banded weight (`vava.core.embedder.shallow_conv3d`). The peer way is the same network's
`nn.Sequential` of Conv3d/BatchNorm3d/ReLU layers as built. Both run on the same module and
inputs, alternating, in training mode (what a training step runs), on the CPU.
"""
from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch

from vava.core.embedder import Embedder, EmbedderConfig

CASES = {  # name: (stacks per step, conv4 map side, conv channels, fc channels)
    "synthetic preset (64 px, T=40, 2 pairs)": (160, 4, 64, 128),
    "Table 9 (112 px, 16 frames)": (16, 7, 512, 512),
    "Table 9 (224 px, 16 frames)": (16, 14, 512, 512),
}


def conv3d_forward(embedder: Embedder, maps: torch.Tensor) -> torch.Tensor:
    pooled = embedder.convs(maps.transpose(1, 2)).amax(dim=(2, 3, 4))
    return embedder.embedding(embedder.fcs(pooled))


def seconds(step: Callable[[], torch.Tensor], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        began = time.perf_counter()
        step().square().sum().backward()
        times.append(time.perf_counter() - began)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    print(f"| case | K | Conv3d layers (ms) | ours (ms) | speed-up |\n|---|---|---|---|---|")
    for name, (stacks, side, conv, fc) in CASES.items():
        for frames in (1, 2):
            embedder = Embedder(1024, EmbedderConfig(conv_channels=conv, fc_channels=fc, context_frames=frames - 1))
            maps = torch.randn(stacks, frames, 1024, side, side)
            seconds(lambda: embedder(maps), 1)  # warm-up
            peer = seconds(lambda: conv3d_forward(embedder, maps), args.repeats)
            ours = seconds(lambda: embedder(maps), args.repeats)
            print(f"| {name} | {frames} | {peer * 1e3:.0f} | {ours * 1e3:.0f} | **{peer / ours:.2f}x** |")


if __name__ == "__main__":
    main()
