"""Extraction throughput on synthetic 224 px videos: decode-only, backbone-only, end-to-end.

Prints frames/s of each and the ratio end-to-end / backbone-only (1.0 = decoding and writing are
fully hidden behind the backbone). Run: `.venv/bin/python bench/bench_extract.py [--size 224]`.
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import torch

from vava.core.backbone import load_backbone
from vava.core.decode import VideoDecoder
from vava.core.preprocess import Preprocessing
from vava.pipeline.datasets.folder import load_folder
from vava.pipeline.datasets.synthetic import SynthConfig, synthesize
from vava.stages.extract.run import ExtractOptions, extract


@torch.inference_mode()
def time_backbone(net: torch.nn.Module, images: torch.Tensor, batch_size: int, device: torch.device) -> float:
    """Seconds to run the backbone over `images` in batches, output cast to float16 on the host."""
    net(images[:batch_size].to(device))  # warm-up
    start = time.perf_counter()
    for i in range(0, images.shape[0], batch_size):
        batch = images[i:i + batch_size].to(device)
        if device.type == "cuda":
            with torch.autocast("cuda", dtype=torch.bfloat16):
                net(batch.contiguous(memory_format=torch.channels_last)).to(torch.float16).cpu()
        else:
            net(batch).to(torch.float16)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--videos", type=int, default=4, help="videos per action (2 actions)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeats", type=int, default=3, help="paired backbone/end-to-end runs")
    args = parser.parse_args()
    device = torch.device(args.device)

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "data"
        synthesize(root, SynthConfig(actions=2, videos=args.videos, size=args.size, frames=(48, 64), seed=0))
        records = load_folder(root)
        frames = sum(r.num_frames for r in records)
        preprocessing = Preprocessing(args.size)

        start = time.perf_counter()
        batches = [preprocessing(chunk.frames) for r in records for chunk in VideoDecoder(r, chunk_frames=args.batch_size)]
        decode_s = time.perf_counter() - start

        net, _ = load_backbone("resnet50", "random")
        net = net.to(device)
        if device.type == "cuda":
            net = net.to(memory_format=torch.channels_last)
        images = torch.cat(batches)
        options = ExtractOptions(weights="random", image_size=args.size, batch_size=args.batch_size,
                                 workers=args.workers, device=args.device, progress=False)
        backbone_s, end_to_end_s = [], []
        for attempt in range(args.repeats):  # paired runs, so drifts in machine load hit both alike
            backbone_s.append(time_backbone(net, images, args.batch_size, device))
            summary = extract(records, Path(tmp) / f"cache{attempt}", options)
            assert summary.ok and summary.frames == frames
            end_to_end_s.append(summary.seconds)
        ratios = sorted(b / e for b, e in zip(backbone_s, end_to_end_s))

    decode_fps, backbone_fps, e2e_fps = frames / decode_s, frames / min(backbone_s), frames / min(end_to_end_s)
    print(f"machine: {os.cpu_count()} CPUs, torch threads {torch.get_num_threads()}, device {device}")
    print(f"dataset: {len(records)} videos, {frames} frames at {args.size} px, batch {args.batch_size}, "
          f"{args.workers} decode workers")
    print(f"decode+preprocess only (1 thread): {decode_fps:8.1f} frames/s")
    print(f"backbone only (best of {args.repeats}):       {backbone_fps:8.1f} frames/s")
    print(f"end-to-end extract (best of {args.repeats}):  {e2e_fps:8.1f} frames/s")
    print(f"ratio end-to-end / backbone-only:  {ratios[len(ratios) // 2]:8.3f}  (median of {args.repeats} paired runs, "
          f"range {ratios[0]:.3f}-{ratios[-1]:.3f}; target >= 0.9)")


if __name__ == "__main__":
    main()
