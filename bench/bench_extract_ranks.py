"""Extraction scaled out on one CPU machine: `vava extract` in 1 vs 2 torchrun processes.

Runs the documented command (`torchrun --standalone --nproc-per-node N --no-python -- vava extract ...`)
on the same synthetic videos into fresh caches, alternating the settings so that drifts in machine
load hit all alike, and prints each setting's frames/s (frames over the slowest rank's extraction
time, as `extract` reports it; start-up excluded) and wall-clock seconds (start-up included), then the
speed-up of 2 processes over 1 and the scaling efficiency (speed-up / 2). Each process runs one
thread (torchrun's default for several processes); one process with 2 threads, the way to use two
cores without torchrun, is measured beside them. Run: `.venv/bin/python bench/bench_extract_ranks.py`.
"""
from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from vava.pipeline.datasets.synthetic import SynthConfig, synthesize

RATE = re.compile(r"(\d+) extracted \((\d+) frames, ([\d.]+) frames/s\)")
SETTINGS = {"1 process, 1 thread": (1, 1), "2 processes, 1 thread each": (2, 1), "1 process, 2 threads": (1, 2)}


def run_extract(root: Path, cache: Path, processes: int, threads: int, args: argparse.Namespace) -> tuple[float, float]:
    """(frames/s as extract reports it, wall-clock seconds) of one extraction into the empty `cache`."""
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", str(processes),
               "--no-python", "--", str(Path(sys.executable).parent / "vava"), "extract", "--root", str(root),
               "--cache", str(cache), "--weights", "random", "--image-size", str(args.image_size),
               "--batch-size", str(args.batch_size), "--workers", "1", "--quiet"]
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, check=False,
                          env={**os.environ, "OMP_NUM_THREADS": str(threads)})
    wall = time.perf_counter() - start
    match = RATE.search(done.stderr)
    if done.returncode or not match:
        raise SystemExit(f"extract failed ({processes} processes):\n{done.stderr}")
    return float(match.group(3)), wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size", type=int, default=224, help="video frame size in pixels")
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--videos", type=int, default=4, help="videos per action (2 actions)")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    load = os.getloadavg()[0]  # other work on the machine takes cores from the processes measured

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "data"
        synthesize(root, SynthConfig(actions=2, videos=args.videos, size=args.size, frames=(24, 36), seed=0))
        rates: dict[str, list[float]] = {name: [] for name in SETTINGS}
        walls: dict[str, list[float]] = {name: [] for name in SETTINGS}
        for attempt in range(args.repeats):
            for name, (processes, threads) in SETTINGS.items():
                rate, wall = run_extract(root, Path(tmp) / f"cache-{attempt}-{processes}-{threads}", processes,
                                         threads, args)
                rates[name].append(rate)
                walls[name].append(wall)

    print(f"machine: {os.cpu_count()} CPUs, load average {load:.1f} before, {os.getloadavg()[0]:.1f} after; "
          f"{2 * args.videos} videos at {args.size} px, image size {args.image_size}, batch {args.batch_size}, "
          "1 decode worker per process, random weights")
    for name in SETTINGS:
        print(f"{name:28s} {max(rates[name]):7.2f} frames/s (best of {args.repeats}; "
              f"{', '.join(f'{r:.2f}' for r in rates[name])}), wall {statistics.median(walls[name]):6.1f} s")
    one, two = max(rates["1 process, 1 thread"]), max(rates["2 processes, 1 thread each"])
    threads = max(rates["1 process, 2 threads"])
    print(f"speed-up 2 processes / 1 process: {two / one:.2f}x  (scaling efficiency {two / one / 2:.0%})")
    print(f"2 processes / 1 process with 2 threads: {two / threads:.2f}x")


if __name__ == "__main__":
    main()
