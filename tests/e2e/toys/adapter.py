"""A toy dataset adapter: ROOT/<split>_<n>.mp4, one action, each video cut into `phases` phases of equal length."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tests.conftest import moving_square
from vava.core.records import VideoRecord
from vava.core.validation import at_least
from vava.core.videoio import probe_video, write_video
from vava.pipeline.datasets.adapter import Dataset, DatasetOptions, option


@dataclass(frozen=True)
class ToyOptions(DatasetOptions):
    phases: int = option(at_least(1), 2, "phases per video, of equal length")


def load_toy(root: Path, options: ToyOptions = ToyOptions(), *, allow_outside_root: bool = False) -> list[VideoRecord]:
    records = []
    for path in sorted(root.glob("*.mp4")):
        frames, fps = probe_video(path)
        records.append(VideoRecord(
            id=path.stem, path=path, split=path.stem.partition("_")[0], action="toy", fps=fps,
            labels=np.arange(frames) * options.phases // frames, phases=tuple(map(str, range(options.phases))),
            confined_to=None if allow_outside_root else root.resolve()))
    return records


def write_fixture(out: Path) -> None:
    Path(out).mkdir(parents=True, exist_ok=True)
    for index, split in enumerate(("train", "train", "train", "val", "val")):
        write_video(Path(out) / f"{split}_{index}.mp4", moving_square(8, seed=index, size=32), 10.0)


DATASET = Dataset("toy", "tiny mp4s named <split>_<n>.mp4", load_toy, write_fixture, ToyOptions)
