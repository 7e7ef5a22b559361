"""Where a CPU training step goes, per objective, and what the recipe changes did to it.

For each objective, one step of the `synthetic` preset on 64 px conv4 maps (1024 x 4 x 4, T = 40,
2 pairs) is split into: the batch gather (host data path), the embedder's forward, the loss's
forward, the backward pass and the optimiser update; medians over `--repeats` steps after a warm-up.
Two settings are measured side by side in one run:

- `old`: the preset as it was (one context frame 15 frames back, raw maps);
- `new`: the preset now (no context frame, standardised maps).

and, for the new setting, the same step with 1 and 2 intra-op threads.
"""
from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch

from vava.cache.store import CachedVideo
from vava.core.config import parse_overrides
from vava.core.embedder import Embedder
from vava.stages.train.config import TrainConfig, load_config
from vava.stages.train.data import Context, FeatureBatch
from vava.stages.train.loop import resolved
from vava.stages.train.objectives import OBJECTIVES, PairBatch, build_objective
from vava.stages.train.sampler import PairSampler

SETTINGS = {"old": ["model.context_frames=1", "model.context_stride=15", "model.standardize=false"],
            "new": []}
PARTS = ("gather", "embed", "loss", "backward", "update")


class Maps:
    """Random conv4-like maps of a few videos in memory, gathered as the host data path does."""

    def __init__(self, videos: list[CachedVideo], shape: tuple[int, ...], seed: int = 0):
        generator = torch.Generator().manual_seed(seed)
        self.maps = {v.id: torch.rand((v.num_frames, *shape), generator=generator).half() for v in videos}

    def gather(self, sampler: PairSampler, step: int, context: Context) -> FeatureBatch:
        draw = sampler.draw(step)
        indices = torch.from_numpy(draw.frame_indices)
        stacks = (indices[..., None] - torch.arange(context.frames, -1, -1) * context.stride(draw)).clamp_min(0)
        maps = torch.stack([torch.stack([self.maps[v][stacks[b, i]] for i, v in enumerate(pair)])
                            for b, pair in enumerate(draw.video_ids)])
        lengths = torch.tensor([[self.maps[v].shape[0] for v in pair] for pair in draw.video_ids])
        return FeatureBatch(maps, indices, lengths, torch.zeros_like(indices))


def time_step(config: TrainConfig, maps: Maps, sampler: PairSampler, context: Context,
              repeats: int) -> dict[str, float]:
    """Median milliseconds of each part of a training step."""
    embedder = Embedder(1024, config.model)
    objective = build_objective(config.objective, config.loss)
    optimizer = torch.optim.Adam([*embedder.parameters(), *objective.parameters()], lr=config.optim.lr)
    times: dict[str, list[float]] = {part: [] for part in PARTS}
    for step in range(repeats + 2):
        marks = [time.perf_counter()]
        batch = maps.gather(sampler, step, context)
        marks.append(time.perf_counter())
        embeddings = embedder(batch.maps.flatten(0, 2).float()).view(*batch.frame_indices.shape, -1)
        marks.append(time.perf_counter())
        loss, _ = objective(PairBatch(embeddings, batch.frame_indices, batch.video_lengths, batch.labels, step))
        marks.append(time.perf_counter())
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        marks.append(time.perf_counter())
        optimizer.step()
        marks.append(time.perf_counter())
        if step >= 2:  # warm-up
            for part, start, stop in zip(PARTS, marks, marks[1:]):
                times[part].append(1000 * (stop - start))
    return {part: statistics.median(values) for part, values in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--objectives", default=",".join(OBJECTIVES))
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    videos = [CachedVideo(f"v{i}", "train", "a", int(n), int(n), 15.0, (), None, True)
              for i, n in enumerate(rng.integers(60, 130, 6))]
    maps = Maps(videos, (1024, 4, 4))
    sampler = PairSampler(videos, 2, 40, seed=0)
    print("ms per training step (median), synthetic preset shapes: 1024 x 4 x 4 maps, T = 40, 2 pairs, "
          "embedder 64/128 channels, CPU")
    print(f"{'objective':12s} {'setting':8s} {'threads':>7s} " + " ".join(f"{p:>9s}" for p in PARTS)
          + f" {'total':>9s} {'old/new':>8s}")
    for name in args.objectives.split(","):
        totals = {}
        for setting, threads in (("old", 1), ("new", 1), ("new", 2)):
            torch.set_num_threads(threads)
            config = resolved(load_config("synthetic", parse_overrides([f"objective={name}", *SETTINGS[setting]])),
                              {"num_classes": 5})
            context = Context.of(config.model, videos)
            parts = time_step(config, maps, sampler, context, args.repeats)
            totals[setting, threads] = sum(parts.values())
            ratio = f"{totals['old', 1] / totals[setting, threads]:7.2f}x" if setting == "new" else ""
            print(f"{name:12s} {setting:8s} {threads:7d} " + " ".join(f"{parts[p]:9.1f}" for p in PARTS)
                  + f" {totals[setting, threads]:9.1f} {ratio:>8s}")


if __name__ == "__main__":
    main()
