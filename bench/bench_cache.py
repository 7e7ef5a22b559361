"""Feature cache: bytes on disk per frame vs raw float16, and random single-frame reads.

Extracts ResNet-50 conv4 maps of synthetic videos (ImageNet weights when present in the torch
hub cache, else random ones), then compares the cache's compressors and measures reading random
single frames from a freshly opened store against the naive way (read the whole video, keep one).
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import zarr
from zarr.codecs import BloscCodec

from vava.cache.inspect import describe
from vava.cache.store import FeatureSet
from vava.core.backbone import imagenet_weights_path
from vava.pipeline.datasets.folder import load_folder
from vava.pipeline.datasets.synthetic import SynthConfig, synthesize
from vava.stages.extract.run import ExtractOptions, extract


def compressed_bytes(features: np.ndarray, compressor: BloscCodec | None, folder: Path) -> int:
    array = zarr.create_array(str(folder), shape=features.shape, dtype=features.dtype,
                              chunks=(1, *features.shape[1:]), compressors=compressor)
    array[:] = features
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--reads", type=int, default=300)
    args = parser.parse_args()
    weights = "imagenet" if imagenet_weights_path("resnet50").is_file() else "random"

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "data"
        synthesize(root, SynthConfig(actions=2, videos=3, size=args.size, frames=(48, 64), seed=0))
        summary = extract(load_folder(root), Path(tmp) / "cache",
                          ExtractOptions(weights=weights, image_size=args.size, progress=False))
        info = describe(FeatureSet.open(summary.path))
        frames = info["frames"]
        print(f"{frames} frames of {info['frame_shape']} ({weights} weights, {args.size} px)")
        print(f"cache (blosc zstd-3 shuffle, sharded): {info['bytes_on_disk'] / frames / 1024:7.1f} KiB/frame, "
              f"raw float16 {info['bytes_raw_float16'] / frames / 1024:7.1f} KiB/frame, "
              f"ratio {info['compression_ratio']:.2f}x")

        sample = FeatureSet.open(summary.path).read(FeatureSet.open(summary.path).videos()[0].id)
        raw = compressed_bytes(sample, None, Path(tmp) / "none")
        for name, codec in [("zstd-3 shuffle", BloscCodec(cname="zstd", clevel=3, shuffle="shuffle")),
                            ("zstd-3 bitshuffle", BloscCodec(cname="zstd", clevel=3, shuffle="bitshuffle")),
                            ("lz4-5 bitshuffle", BloscCodec(cname="lz4", clevel=5, shuffle="bitshuffle"))]:
            size = compressed_bytes(sample, codec, Path(tmp) / name.replace(" ", "_"))
            print(f"  one video, {name:18s}: {raw / size:5.2f}x smaller than uncompressed chunks")

        rng = np.random.default_rng(0)
        fresh = FeatureSet.open(summary.path)  # no zarr metadata cached yet
        videos = fresh.videos()
        picks = [(videos[i], int(rng.integers(videos[i].num_frames))) for i in rng.integers(len(videos), size=args.reads)]
        start = time.perf_counter()
        for video, frame in picks:
            fresh.read(video.id, [frame])
        single_fps = args.reads / (time.perf_counter() - start)
        naive = FeatureSet.open(summary.path)
        start = time.perf_counter()
        for video, frame in picks[: max(args.reads // 10, 1)]:
            naive.read(video.id)[frame]
        naive_fps = max(args.reads // 10, 1) / (time.perf_counter() - start)
        print(f"random single-frame reads: {single_fps:8.1f} frames/s; whole-video-then-pick: {naive_fps:8.1f} "
              f"frames/s; ratio {single_fps / naive_fps:.1f}x")


if __name__ == "__main__":
    main()
