"""The GPU check's measurements; `bench/gpu_check.sh` runs the `gpu` tests, then this, and README quotes the result.

Writes OUT/gpu_check.md:
1. extraction (ResNet-50 to conv4 at --image-size px, bf16 and channels_last on a GPU) of synthetic videos, once
   per number of decode workers: frames/s, and what bounds it, from the same run: the seconds the backbone
   thread waited for decoded frames against the seconds it ran the backbone;
2. training steps/s of the `paper` preset (`synthetic` in the quick sizes) on those features: host vs device data path;
3. leave-one-video-out retrieval search (AP@K's neighbours): faiss on the GPU vs on the CPU, and whether
   they find the same neighbours.
Without CUDA (or without faiss-gpu) the GPU parts are listed as skipped, with the reason. A part that
fails is written down with its error and the others still run; the exit status is then 1.
"""
from __future__ import annotations

import argparse
import csv
import dataclasses
import datetime as dt
import os
import platform
import shutil
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path

import faiss
import numpy as np
import torch

from vava.core.config import parse_overrides
from vava.pipeline.datasets.folder import load_folder
from vava.pipeline.datasets.synthetic import SynthConfig, synthesize
from vava.stages.evaluate.probes.retrieval import exact_search, faiss_device, leave_one_video_out
from vava.stages.evaluate.tables import markdown
from vava.stages.extract.run import ExtractOptions, extract
from vava.stages.train.config import load_config
from vava.stages.train.loop import train

NO_CUDA = "no CUDA device"


@dataclasses.dataclass(frozen=True)
class Sizes:
    """How much work each part does: `full` fits 8 minutes on one GPU machine, `quick` a few on 2 CPU cores."""

    video_size: int       # px of the synthetic videos (square)
    image_size: int       # px the backbone sees
    videos: int           # per action (2 actions)
    frames: tuple[int, int]
    repeats: int          # each video is extracted this many times (under other ids): more frames, same rendering
    workers: tuple[int, ...]
    batch_size: int
    train_steps: int
    preset: str           # the training config
    retrieval_videos: int
    retrieval_frames: int


FULL = Sizes(video_size=256, image_size=224, videos=4, frames=(60, 90), repeats=10, workers=(2, 8), batch_size=128,
             train_steps=60, preset="paper", retrieval_videos=100, retrieval_frames=300)
QUICK = Sizes(video_size=64, image_size=64, videos=3, frames=(16, 24), repeats=1, workers=(1, 2), batch_size=16,
              train_steps=4, preset="synthetic", retrieval_videos=20, retrieval_frames=60)


def machine() -> str:
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else NO_CUDA
    faiss_gpu = "yes" if hasattr(faiss, "StandardGpuResources") else "no (faiss-cpu)"
    return (f"{dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC; {platform.node()}, {os.cpu_count()} CPUs, "
            f"GPU: {gpu}; torch {torch.__version__}, faiss {faiss.__version__} (GPU build: {faiss_gpu})")


def tests_section(log: Path | None) -> str:
    """The pytest summary line and the reasons for skips, from the log of `pytest -m gpu -rs`."""
    if log is None:
        return "not run"
    if not log.is_file():
        return f"no log at {log}"
    lines = [line for line in log.read_text().splitlines() if line.strip()]
    shown = [line for line in lines if line.startswith(("SKIPPED", "FAILED", "ERROR"))] + lines[-1:]
    return "\n".join(f"    {line}" for line in shown)


def extraction(sizes: Sizes, work: Path, device: str) -> tuple[str, Path]:
    """Each worker count's run; returns the section and the feature set of the last run (kept for training)."""
    synthesize(work / "data", SynthConfig(actions=2, videos=sizes.videos, size=sizes.video_size,
                                          frames=sizes.frames, seed=0))
    records = [dataclasses.replace(record, id=f"{record.id}_{copy}")
               for record in load_folder(work / "data") for copy in range(sizes.repeats)]
    rows, kept = [], work / "cache"
    options = ExtractOptions(weights="random", image_size=sizes.image_size, batch_size=sizes.batch_size,
                             device=device, progress=False)
    extract(records[:1], work / "warm-up", options)  # CUDA and cuDNN start-up is not throughput
    for workers in sizes.workers:
        shutil.rmtree(kept, ignore_errors=True)  # every run extracts everything
        summary = extract(records, kept, dataclasses.replace(options, workers=workers))
        if not summary.ok:
            raise RuntimeError(f"extraction failed: {next(iter(summary.failed.values()))}")
        other = summary.seconds - summary.waiting_s - summary.backbone_s
        shares = {"decoding": summary.waiting_s, "backbone": summary.backbone_s, "writing": other}
        bound = max(shares, key=shares.get)
        rows.append([str(workers), str(summary.frames), f"{summary.seconds:.1f}",
                     f"**{summary.frames / summary.seconds:.0f}**", f"{summary.waiting_s:.1f}",
                     f"{summary.backbone_s:.1f}", f"{summary.frames / summary.backbone_s:.0f}", f"{other:.1f}", bound])
    table = markdown(["decode workers", "frames", "seconds", "frames/s", "waiting for frames (s)",
                      "backbone (s)", "backbone alone (frames/s)", "other (s)", "bound by"], rows)
    what = (f"{len(records)} videos ({sizes.videos * 2} synthetic ones at {sizes.video_size} px, each extracted "
            f"{sizes.repeats}x under other ids), ResNet-50 to conv4 at {sizes.image_size} px, random weights, batch "
            f"{sizes.batch_size}, device {device}" + (" (bf16 autocast, channels_last)" if device == "cuda" else
                                                      " (float32)"))
    note = ("The backbone thread's time, from the same run: waiting for decoded frames, running the backbone "
            "(input copy and output back to the host included), and the rest (batching, and handing maps to the "
            "writer thread, which blocks when writing falls behind); \"bound by\" names the largest: decoding, "
            "backbone or writing.")
    return f"{what}.\n\n{table}\n{note}", summary.path


def training(sizes: Sizes, features: Path, work: Path) -> str:
    """steps/s of the training preset per data path, over the log windows after the first (start-up left out)."""
    window = max(1, sizes.train_steps // 3)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    overrides = [f"steps={sizes.train_steps}", f"log_every={window}", f"checkpoint_every={sizes.train_steps}"]
    config = load_config(sizes.preset, parse_overrides(overrides))
    rows = []
    for path in ("host", "device"):
        if path == "device" and device != "cuda":
            rows.append([path, "skipped", NO_CUDA])
            continue
        summary = train(features, work / f"run-{path}", load_config(sizes.preset, parse_overrides(
            [*overrides, f"data.path={path}"])), device=device, progress=False)
        with open(work / f"run-{path}" / "train_log.csv") as handle:
            rates = [float(row["steps_per_s"]) for row in csv.DictReader(handle)][1:]
        rate = float(np.mean(rates))
        rows.append([path, f"**{rate:.2f}**", f"{1000 / rate:.0f} ms/step, last loss {summary.loss:.4g}"])
    data, model = config.data, config.model
    return (f"The `{sizes.preset}` preset ({data.batch_pairs} pairs x {data.frames_per_video} frames, embedder "
            f"{model.conv_channels}/{model.fc_channels} channels, {model.context_frames} context frame(s)) on the "
            f"extracted features, {sizes.train_steps} steps on {device}; steps/s over the log windows after the "
            "first.\n\n"
            + markdown(["data path", "steps/s", "notes"], rows))


def retrieval(sizes: Sizes) -> str:
    """The leave-one-video-out k-NN of AP@K (k = 15) over clustered 128-d embeddings, CPU vs GPU faiss."""
    rng = np.random.default_rng(0)
    videos, length = sizes.retrieval_videos, sizes.retrieval_frames
    phases = rng.standard_normal((8, 128)).astype(np.float32)
    labels = (np.arange(length) * 8 // length)[None].repeat(videos, 0).ravel()
    frames = np.ascontiguousarray(phases[labels] + rng.standard_normal((labels.size, 128)).astype(np.float32))
    bounds = np.arange(videos + 1) * length

    def timed(device: str) -> tuple[float, np.ndarray]:
        search = exact_search(device)
        leave_one_video_out(frames[: 2 * length], bounds[:3], 15, search)  # warm-up (GPU resources, threads)
        start = time.perf_counter()
        found = leave_one_video_out(frames, bounds, 15, search)
        return time.perf_counter() - start, found

    cpu_s, on_cpu = timed("cpu")
    rows = [["cpu", f"{cpu_s:.2f}", f"{labels.size / cpu_s:.0f}", "1.0x", "-"]]
    if faiss_device("auto") == "gpu":
        gpu_s, on_gpu = timed("gpu")
        same = float((on_gpu == on_cpu).all(axis=1).mean())
        rows.append(["gpu", f"{gpu_s:.2f}", f"{labels.size / gpu_s:.0f}", f"**{cpu_s / gpu_s:.1f}x**",
                     f"{100 * same:.2f} % of query frames"])
    else:
        reason = NO_CUDA if not torch.cuda.is_available() else "this faiss build has no GPU support"
        rows.append(["gpu", "skipped", reason, "", ""])
    return (f"{videos} videos x {length} frames, 128-d, 15 nearest frames among the other videos (exact L2), "
            f"faiss {faiss.__version__}, {faiss.omp_get_max_threads()} CPU threads.\n\n"
            + markdown(["faiss", "seconds", "query frames/s", "speed-up", "same 15 neighbours"], rows))


def run_part(title: str, part: Callable[[], str], failures: list[str]) -> str:
    """The part's section, or its error (the other parts still run)."""
    started = time.perf_counter()
    print(f"gpu_check: {title} ...", file=sys.stderr, flush=True)
    try:
        body = part()
    except Exception as err:  # noqa: BLE001 - any error: reported in its section, the next part still runs
        traceback.print_exc()
        failures.append(title)
        body = f"**failed**: {type(err).__name__}: {err}"
    return f"## {title}\n\n{body.rstrip()}\n\n({time.perf_counter() - started:.0f} s)\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("bench/out/gpu_check"), help="folder for gpu_check.md")
    parser.add_argument("--quick", action="store_true", help="small sizes, for a CPU-only machine (minutes)")
    parser.add_argument("--tests-log", type=Path, help="the log of `pytest -m gpu -rs`, summarised in the report")
    args = parser.parse_args(argv)
    sizes = QUICK if args.quick else FULL
    device = "cuda" if torch.cuda.is_available() else "cpu"
    args.out.mkdir(parents=True, exist_ok=True)
    failures: list[str] = []
    sections = [f"# GPU check ({'quick' if args.quick else 'full'} sizes)\n\n{machine()}\n",
                f"## Tests marked gpu\n\n{tests_section(args.tests_log)}\n"]
    with tempfile.TemporaryDirectory(prefix="gpu_check-") as tmp:
        work = Path(tmp)
        found: dict[str, Path] = {}

        def extract_part() -> str:
            text, found["features"] = extraction(sizes, work, device)
            return text

        def train_part() -> str:
            if "features" not in found:
                raise RuntimeError("no features: the extraction failed")
            return training(sizes, found["features"], work)

        sections.append(run_part("Extraction", extract_part, failures))
        sections.append(run_part("Training step: host vs device data path", train_part, failures))
    sections.append(run_part("Retrieval: faiss GPU vs CPU", lambda: retrieval(sizes), failures))
    report = "\n".join(sections)
    (args.out / "gpu_check.md").write_text(report)
    print(report)
    print(f"gpu_check: wrote {args.out / 'gpu_check.md'}" + (f"; failed: {', '.join(failures)}" if failures else ""),
          file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
