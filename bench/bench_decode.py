"""Decode + preprocess throughput of full-resolution H.264 (1080p, 720p) to 224 px: the float scaler (float
conversion, then an antialiased resize at full resolution; the path before `--scaler`) against the uint8 one
(FFmpeg converts to RGB, then resizes the 8-bit frames), per core and with every core; then, on the uint8 path,
decode workers as threads against processes; the two decoders (PyAV, torchcodec where it loads); and the uint8
resize kernels for images (frame folders, TFRecord JPEGs).

The clips are the synthetic generator's frames (128 px) upscaled to 16:9 and encoded with libx264, in a temporary
folder. Run: `.venv/bin/python bench/bench_decode.py [--videos 2] [--frames 48] [--repeats 2]`.
"""
from __future__ import annotations

import argparse
import multiprocessing
import os
import queue
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torchvision.transforms.v2 import functional as TF

from vava.core.decode import VideoDecoder
from vava.core.preprocess import Preprocessing
from vava.core.records import VideoRecord
from vava.core.torchcodec_decode import torchcodec_problem
from vava.core.videoio import write_video
from vava.pipeline.datasets.folder import load_folder
from vava.pipeline.datasets.synthetic import SynthConfig, synthesize

RESOLUTIONS = {"1080p": (1080, 1920), "720p": (720, 1280)}
SIZE = 224


def upscaled_clips(tmp: Path, videos: int, frames: int, fps: float = 15.0) -> dict[str, list[VideoRecord]]:
    """Per resolution, `videos` H.264 clips of `frames` frames: synthetic 128 px frames upscaled (bicubic)."""
    synthesize(tmp / "synth", SynthConfig(actions=1, videos=videos, size=128, frames=(frames, frames), seed=0,
                                          fps=fps))
    sources = load_folder(tmp / "synth")
    clips: dict[str, list[VideoRecord]] = {}
    for name, (height, width) in RESOLUTIONS.items():
        clips[name] = []
        for source in sources:
            small = torch.cat([c.frames for c in VideoDecoder(source)])[:frames]
            pixels = np.empty((len(small), height, width, 3), dtype=np.uint8)
            for i, frame in enumerate(small):  # one at a time: a float 1080p frame is 25 MB
                big = F.interpolate(frame[None].float(), size=(height, width), mode="bicubic", align_corners=False)
                pixels[i] = big[0].clamp(0, 255).round().to(torch.uint8).permute(1, 2, 0).numpy()
            path = tmp / f"{source.id}_{name}.mp4"
            write_video(path, pixels, fps, crf=20)
            clips[name].append(VideoRecord(id=path.stem, path=path, split="train", action="a", labels=None, fps=fps))
    return clips


def decode_video(record: VideoRecord, preprocessing: Preprocessing) -> int:
    """Decode and preprocess one video as an extraction's decode worker does; the number of frames."""
    chunks = VideoDecoder(record, 16, None, preprocessing)
    return sum(preprocessing(chunk.frames).shape[0] for chunk in chunks)


def decode_scaled(record: VideoRecord, preprocessing: Preprocessing) -> np.ndarray:
    """A process worker's part: the video's frames decoded and resized, still uint8 (the least to send back)."""
    return torch.cat([chunk.frames for chunk in VideoDecoder(record, 16, None, preprocessing)]).numpy()


def with_threads(records: list[VideoRecord], preprocessing: Preprocessing, workers: int) -> int:
    """Frames decoded by `workers` threads taking videos from one queue (as `extract` runs them)."""
    todo: queue.Queue[VideoRecord] = queue.Queue()
    for record in records:
        todo.put(record)
    counts: list[int] = []

    def work() -> None:
        while True:
            try:
                counts.append(decode_video(todo.get_nowait(), preprocessing))
            except queue.Empty:
                return

    threads = [threading.Thread(target=work) for _ in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sum(counts)


def with_processes(pool: multiprocessing.pool.Pool, records: list[VideoRecord], preprocessing: Preprocessing) -> int:
    """Frames decoded by the pool's processes, converted to float here (as the backbone's process would)."""
    arrays = pool.starmap(decode_scaled, [(record, preprocessing) for record in records])
    return sum(preprocessing(torch.from_numpy(a)).shape[0] for a in arrays)


def rate(run: Callable[[], int]) -> float:
    start = time.perf_counter()
    frames = run()
    return frames / (time.perf_counter() - start)


def best_rates(runs: list[Callable[[], int]], repeats: int) -> list[float]:
    """Frames/s of each of `runs` (which return the frames they did), the best of `repeats`, taken in turns so that
    a change in the machine's load hits all alike (it is shared: the best is the least disturbed)."""
    rates = [[rate(run) for run in runs] for _ in range(repeats)]
    return [max(column) for column in zip(*rates)]


def on_cores(cores: set[int], threads: int, run: Callable[[], float]) -> float:
    """`run()` with this process (and the threads it starts) on `cores` and `threads` torch threads."""
    every, torch_threads = os.sched_getaffinity(0), torch.get_num_threads()
    os.sched_setaffinity(0, cores)
    torch.set_num_threads(threads)
    try:
        return run()
    finally:
        os.sched_setaffinity(0, every)
        torch.set_num_threads(torch_threads)


def scalers_rates(records: list[VideoRecord], scalers: list[Preprocessing], workers: int, cores: set[int],
                  repeats: int) -> list[float]:
    """Best frames/s of `workers` decode threads on `cores` with each preprocessing (torch on one thread, as in
    each decode worker)."""
    runs = [lambda p=p: with_threads(records, p, workers) for p in scalers]
    return on_cores(cores, 1, lambda: best_rates(runs, repeats))


def image_kernels(height: int, width: int, repeats: int) -> dict[str, float]:
    """Images/s of resizing 16 RGB images of `height` x `width` to 224 x 224 with each candidate kernel."""
    rng = np.random.default_rng(0)
    images = [np.asarray(Image.fromarray(rng.integers(0, 256, (height // 8, width // 8, 3), dtype=np.uint8))
                         .resize((width, height), Image.BICUBIC)) for _ in range(16)]
    batch = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).contiguous()
    runs = {
        "Pillow bilinear, per image": lambda: [Image.fromarray(a).resize((SIZE, SIZE), Image.BILINEAR) for a in images],
        "torchvision uint8 bilinear-antialias, batch": lambda: TF.resize(batch, [SIZE, SIZE], antialias=True),
        "float conversion, then torchvision resize (before)": lambda: TF.resize(batch.float() / 255, [SIZE, SIZE],
                                                                                 antialias=True),
    }
    rates = best_rates([lambda run=run: (run(), len(images))[1] for run in runs.values()], repeats)
    return dict(zip(runs, rates))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--videos", type=int, default=2, help="clips per resolution")
    parser.add_argument("--frames", type=int, default=48, help="frames per clip")
    parser.add_argument("--repeats", type=int, default=2, help="runs of each measurement (the best is shown)")
    args = parser.parse_args()
    cores = sorted(os.sched_getaffinity(0))
    workers = len(cores)
    old, new = Preprocessing(SIZE, scaler="float"), Preprocessing(SIZE, scaler="uint8")
    print(f"machine: {len(cores)} usable cores, load average {os.getloadavg()[0]:.1f}; {args.videos} clips x "
          f"{args.frames} frames per resolution, to {SIZE} px (stretch), best of {args.repeats} runs taken in turns")

    with tempfile.TemporaryDirectory() as tmp:
        clips = upscaled_clips(Path(tmp), args.videos, args.frames)
        print("\ndecode + preprocess, frames/s         float (before)   uint8 (now)   uint8 / float")
        for name, records in clips.items():
            for label, cpus, threads in (("1 core ", {cores[0]}, 1), (f"{workers} cores", set(cores), workers)):
                rates = scalers_rates(records, [old, new], threads, cpus, args.repeats)
                where = f"{label} ({threads} worker thread{'s' * (threads > 1)})"
                print(f"{name:5s} {where:30s}{rates[0]:9.1f} {rates[1]:13.1f} {rates[1] / rates[0]:13.1f}x")

        problem = torchcodec_problem()
        if problem:
            print(f"\n--decoder torchcodec: not measured ({problem})")
        else:
            print("\nuint8 path, 1 core, frames/s                    pyav   torchcodec   torchcodec / pyav")
            codec = Preprocessing(SIZE, scaler="uint8", decoder="torchcodec")
            for name, records in clips.items():
                pyav, torchcodec = scalers_rates(records, [new, codec], 1, {cores[0]}, args.repeats)
                print(f"{name:5s}{pyav:42.1f} {torchcodec:12.1f} {torchcodec / pyav:19.2f}")

        print(f"\nuint8 path, {workers} decode workers, frames/s       threads   processes   threads / processes")
        with multiprocessing.get_context("spawn").Pool(workers) as pool:
            for name, records in clips.items():
                with_processes(pool, records[:workers], new)  # start-up and imports out of the timing
                threaded, processes = best_rates([lambda r=records: with_threads(r, new, workers),
                                                  lambda r=records: with_processes(pool, r, new)], args.repeats)
                print(f"{name:5s}{threaded:39.1f} {processes:11.1f} {threaded / processes:17.2f}")

    print(f"\nimages (frame folders, TFRecord JPEGs) at 1080p to {SIZE} px, 1 core, images/s")
    rates = on_cores({cores[0]}, 1, lambda: image_kernels(1080, 1920, args.repeats))
    for name, images_per_s in rates.items():
        print(f"  {name:52s} {images_per_s:7.1f}")
    print(f"load average at the end: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
