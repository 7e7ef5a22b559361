"""Training throughput: from the feature cache vs from raw videos, and each data path's loader.

1. steps/s of VAVA training on cached conv4 maps vs the same training that decodes the videos and
   runs the backbone every step (the naive way, written only here);
2. batches/s of each data path (zarr with DataLoader workers, host memory, GPU memory when there
   is a GPU) on their own, next to the training step rate: a loader must keep up with the step.
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch

from vava.cache.store import FeatureSet
from vava.core.backbone import load_backbone
from vava.core.config import parse_overrides
from vava.core.decode import VideoDecoder
from vava.core.devices import resolve_device
from vava.core.embedder import Embedder, context_indices
from vava.core.preprocess import Preprocessing
from vava.pipeline.datasets.folder import load_folder
from vava.pipeline.datasets.synthetic import SynthConfig, synthesize
from vava.stages.extract.run import ExtractOptions, extract
from vava.stages.train.config import load_config
from vava.stages.train.data import Context, PhaseClasses, batches
from vava.stages.train.loop import train
from vava.stages.train.objectives import PairBatch, build_objective
from vava.stages.train.sampler import PairSampler


def raw_steps_per_second(root: Path, feature_set: FeatureSet, config, size: int, steps: int,
                         device: torch.device) -> float:
    """The naive pipeline: every step decodes its videos and runs the frozen backbone on its frames."""
    records = {r.id: r for r in load_folder(root) if r.split == "train"}
    backbone, _ = load_backbone("resnet50", "random")
    backbone = backbone.to(device)
    preprocessing = Preprocessing(size)
    videos = [v for v in feature_set.videos() if v.split == "train"]  # same videos, same sampling
    sampler = PairSampler(videos, config.data.batch_pairs, config.data.frames_per_video, config.seed)
    context = Context.of(config.model, videos)
    embedder = Embedder(1024, config.model).to(device)
    objective = build_objective(config.objective, config.loss).to(device)
    optimizer = torch.optim.Adam([*embedder.parameters(), *objective.parameters()], lr=config.optim.lr)
    start = time.perf_counter()
    for step in range(steps):
        draw = sampler.draw(step)
        indices = torch.from_numpy(draw.frame_indices)
        stacks = context_indices(indices, context.frames, context.stride(draw))
        maps = []
        for b, pair in enumerate(draw.video_ids):
            for v, video_id in enumerate(pair):
                frames = torch.cat([c.frames for c in VideoDecoder(records[video_id])])
                with torch.inference_mode():
                    maps.append(backbone(preprocessing(frames[stacks[b, v].flatten()]).to(device)))
        maps = torch.stack(maps).view(*stacks.shape, *maps[0].shape[1:]).to(device)
        embeddings = embedder(maps.flatten(0, 2)).view(*indices.shape, -1)
        lengths = torch.tensor([[records[v].num_frames for v in pair] for pair in draw.video_ids])
        loss, _ = objective(PairBatch(embeddings, indices.to(device), lengths.to(device),
                                      torch.zeros_like(indices).to(device), step))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return steps / (time.perf_counter() - start)


def loader_batches_per_second(feature_set: FeatureSet, config, path: str, steps: int, device: torch.device) -> float:
    videos = [v for v in feature_set.videos() if v.split == "train"]
    sampler = PairSampler(videos, config.data.batch_pairs, config.data.frames_per_video, config.seed)
    context, classes = Context.of(config.model, videos), PhaseClasses.of(feature_set, videos)
    stream = batches(feature_set, videos, sampler, path, context, classes, 0, steps + 2, device, config.data.workers)
    next(stream), next(stream)  # start-up (workers, loading into memory) is not throughput
    start = time.perf_counter()
    for _ in range(steps):
        next(stream)
    return steps / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size", type=int, default=64, help="frame and backbone input size")
    parser.add_argument("--config", default="synthetic")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--raw-steps", type=int, default=4)
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()
    device = resolve_device(args.device)
    config = load_config(args.config, parse_overrides([f"steps={args.steps}", "log_every=1000"]))

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "data"
        synthesize(root, SynthConfig(actions=2, videos=5, size=args.size, frames=(60, 90), seed=0))
        summary = extract(load_folder(root), Path(tmp) / "cache",
                          ExtractOptions(weights="random", image_size=args.size, device=str(device), progress=False))
        feature_set = FeatureSet.open(summary.path)
        cached = train(summary.path, Path(tmp) / "run", config, device=str(device), progress=False)
        cached_rate = cached.steps / cached.seconds
        raw_rate = raw_steps_per_second(root, feature_set, config, args.size, args.raw_steps, device)
        print(f"device {device}, config {args.config}: T={config.data.frames_per_video}, "
              f"{config.data.batch_pairs} pairs, embedder {config.model.conv_channels}/{config.model.fc_channels} "
              f"channels, {args.size} px")
        print(f"training from the cache ({cached.data_path} path): {cached_rate:7.2f} steps/s")
        print(f"training from raw videos (decode + backbone):   {raw_rate:7.3f} steps/s")
        print(f"ratio cache / raw: {cached_rate / raw_rate:.1f}x (target >= 20x)")
        paths = ["zarr", "host"] + (["device"] if device.type == "cuda" else [])
        for path in paths:
            rate = loader_batches_per_second(feature_set, config, path, args.steps, device)
            print(f"loader {path:6s}: {rate:8.1f} batches/s = {rate / cached_rate:6.1f}x the training step rate")


if __name__ == "__main__":
    main()
