"""Pouring (TCC): 84 videos of a hand pouring from a bottle, 5 phases per frame. Two on-disk layouts:

- `tfrecord`, the TCC distribution: `ROOT/pouring_<split>-<i>-of-<n>.tfrecord` shards (train: 2 shards,
  70 videos; val: 1 shard, 14 videos; a test shard is read too when present), one SequenceExample per
  video: context `name`, `len`, `label`; feature lists `video` (one JPEG per frame) and `frame_labels`.
  The frames stay in the shards: each record points at its video's byte offset (`VideoRecord.member`).
  Videos come in TensorFlow's interleaved read order (one record of each shard in turn), the order
  the "first n videos" of TCC's evaluations refer to.
- `carl`, CARL's re-packaging: `ROOT/videos/<name>.mp4` plus `ROOT/train.pkl` and `ROOT/val.pkl`, each
  a pickled list of `{id, name, video_file, frame_label (LongTensor[T]), seq_len}`, read with a
  restricted unpickler; list order is kept.
"""
from __future__ import annotations

import io
import pickle
import reprlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from vava.core.errors import ConfigError, VavaError
from vava.core.files import atomic_write, check_confined
from vava.core.records import MAX_FRAMES, VideoRecord, check_video_id
from vava.core.safe_pickle import load_pickle
from vava.core.tfrecord import (
    SequenceExample,
    encode_sequence_example,
    iter_records,
    parse_sequence_example,
    write_records,
)
from vava.core.videoio import write_video
from vava.pipeline.datasets.adapter import Dataset, DatasetOptions, choice, option
from vava.pipeline.datasets.folder import resolve_video_path
from vava.pipeline.datasets.rates import fps_option, frame_rate

ACTION = "pouring"
# One phase before, between and after the four key events: the hand touches the bottle, liquid starts
# to exit, pouring is complete, the bottle is back on the table.
PHASES = ("reach", "lift", "pour", "put_back", "withdraw")
# Assumed: the shards record no rate, and TCC's videos_to_tfrecords keeps the source videos' (its fps flag
# defaults to 0, "read from the video"); only its images_to_tfrecords defaults to 30.
TFRECORD_FPS = 30.0
SHARD_PREFIX = "pouring_"
TFRECORD_SPLITS = ("train", "val", "test")
CARL_SPLITS = ("train", "val")
LAYOUTS = ("auto", "tfrecord", "carl")
_CARL_KEYS = ("name", "video_file", "frame_label", "seq_len")


@dataclass(frozen=True)
class PouringOptions(DatasetOptions):
    """The `--dataset-option`s of `pouring`."""

    layout: str = option(choice(*LAYOUTS), "auto", "on-disk layout: tfrecord (pouring_*.tfrecord shards), carl "
                         "(videos/ + train.pkl, val.pkl), or auto: whichever ROOT holds")
    fps: float | None = fps_option(f"frame rate of the tfrecord layout's frames (default {TFRECORD_FPS:g}, assumed: "
                                   "the shards store none)")


def load_pouring(root: str | Path, options: PouringOptions = PouringOptions(), *,
                 allow_outside_root: bool = False) -> list[VideoRecord]:
    """The Pouring videos at `root`, in the layout given or detected (see the module docstring); the `fps`
    option is the rate of the TFRecord frames (default `TFRECORD_FPS`; CARL's mp4s carry their own)."""
    root = Path(root)
    if not root.is_dir():
        raise VavaError(f"dataset root {root} is not a directory")
    layout = detect_layout(root) if options.layout == "auto" else options.layout
    confined_to = None if allow_outside_root else root.resolve()
    if layout == "tfrecord":
        rate = frame_rate(options.fps, TFRECORD_FPS, "pouring", "TFRecord shards store none")
        found = _tfrecord_videos(root, confined_to, rate)
    else:
        if options.fps is not None:
            raise ConfigError("fps", "the carl layout's mp4s carry their own frame rate")
        found = _carl_videos(root, confined_to)
    records: list[VideoRecord] = []
    seen: dict[str, str] = {}
    for where, record in found:
        if record.id in seen:
            raise VavaError(f"{where}: video {record.id!r}: duplicate name (first in {seen[record.id]})")
        seen[record.id] = where
        records.append(record)
    return records


def detect_layout(root: Path) -> str:
    """`tfrecord` when `root` holds `pouring_*.tfrecord` shards, `carl` when it holds `train.pkl`."""
    if any(root.glob(f"{SHARD_PREFIX}*.tfrecord")):
        return "tfrecord"
    if (root / "train.pkl").is_file():
        return "carl"
    raise VavaError(f"{root}: not a Pouring dataset (looked for {SHARD_PREFIX}*.tfrecord shards and train.pkl)")


def _check_labels(labels: np.ndarray, where: str) -> np.ndarray:
    if labels.size == 0:
        raise VavaError(f"{where}: no frame labels (zero-frame video)")
    bad = labels[(labels < 0) | (labels >= len(PHASES))]
    if bad.size:
        raise VavaError(f"{where}: frame label {bad[0]} is not a phase id (0..{len(PHASES) - 1})")
    return labels


def _record(video_id: str, path: Path, split: str, labels: np.ndarray, confined_to: Path | None,
            fps: float | None = None, member: int | None = None) -> VideoRecord:
    return VideoRecord(id=video_id, path=path, split=split, action=ACTION, labels=labels, phases=PHASES, fps=fps,
                       confined_to=confined_to, member=member)


# ---------------------------------------------------------------------------------------------
# TFRecord layout


def _tfrecord_videos(root: Path, confined_to: Path | None, fps: float) -> Iterator[tuple[str, VideoRecord]]:
    for split in TFRECORD_SPLITS:
        pattern = f"{SHARD_PREFIX}{split}*"  # TCC's loader globs <root>/<dataset>_<split>*
        shards = sorted(path for path in root.glob(pattern) if path.is_file())
        if not shards and split in CARL_SPLITS:
            raise VavaError(f"{root}: no {pattern} shards (the tfrecord layout needs train and val shards)")
        for shard in shards:
            check_confined(shard, confined_to, f"{shard}:")
        for shard, offset, data in _interleaved(shards):
            where = f"{shard}: record at byte {offset}"
            yield where, _tfrecord_video(parse_sequence_example(data, where, ("frame_labels",)), shard.resolve(),
                                         offset, split, confined_to, fps, where)


def _interleaved(shards: list[Path]) -> Iterator[tuple[Path, int, bytes]]:
    """The records of `shards`, one record of each shard in turn (a shard that runs out drops out), the
    order TensorFlow's interleaved read of the files yields them in."""
    readers = [_shard_records(shard) for shard in shards]
    while readers:
        for reader in list(readers):
            record = next(reader, None)
            if record is None:
                readers.remove(reader)
            else:
                yield record


def _shard_records(shard: Path) -> Iterator[tuple[Path, int, bytes]]:
    for offset, data in iter_records(shard):
        yield shard, offset, data


def _tfrecord_video(example: SequenceExample, shard: Path, offset: int, split: str, confined_to: Path | None,
                    fps: float, where: str) -> VideoRecord:
    name = example.context.get("name")
    if not (isinstance(name, list) and len(name) == 1):
        raise VavaError(f"{where}: the context has no single `name`")
    try:
        video_id = check_video_id(name[0].decode("utf-8"), where)
    except UnicodeDecodeError:
        raise VavaError(f"{where}: the video name is not UTF-8 ({name[0][:40]!r})") from None
    where = f"{where}: video {video_id!r}"
    steps = example.feature_lists.get("frame_labels")
    if steps is None:
        raise VavaError(f"{where}: no `frame_labels` feature list")
    if not all(isinstance(step, np.ndarray) and step.dtype == np.int64 and step.size == 1 for step in steps):
        raise VavaError(f"{where}: `frame_labels` must hold one int64 per frame")
    labels = _check_labels(np.concatenate(steps) if steps else np.zeros(0, np.int64), where)
    length = example.context.get("len")
    if isinstance(length, np.ndarray) and length.size == 1 and int(length[0]) != labels.size:
        raise VavaError(f"{where}: `len` is {int(length[0])} but there are {labels.size} frame labels")
    return _record(video_id, shard, split, labels, confined_to, fps=fps, member=offset)


# ---------------------------------------------------------------------------------------------
# CARL layout


def _carl_videos(root: Path, confined_to: Path | None) -> Iterator[tuple[str, VideoRecord]]:
    for split in CARL_SPLITS:
        pickled = root / f"{split}.pkl"
        if not pickled.is_file():
            raise VavaError(f"{pickled}: missing (the carl layout needs train.pkl and val.pkl)")
        check_confined(pickled, confined_to, f"{pickled}:")
        entries = load_pickle(pickled)
        if not isinstance(entries, list):
            raise VavaError(f"{pickled}: expected a list of videos, got {type(entries).__name__}")
        for index, entry in enumerate(entries):
            where = f"{pickled}: entry {index}"
            yield where, _carl_video(entry, root, split, confined_to, where)


def _carl_video(entry: object, root: Path, split: str, confined_to: Path | None, where: str) -> VideoRecord:
    if not isinstance(entry, dict):
        raise VavaError(f"{where}: expected a dict, got {type(entry).__name__}")
    missing = [key for key in _CARL_KEYS if key not in entry]
    if missing:
        raise VavaError(f"{where}: missing key(s) {', '.join(missing)}")
    video_id, video_file = check_video_id(entry["name"], where), entry["video_file"]
    where = f"{where}: video {video_id!r}" + (f" ({video_file})" if isinstance(video_file, str) else "")
    path = resolve_video_path(video_file, root, confined_to, where)
    labels = _check_labels(_label_array(entry["frame_label"], where), where)
    seq_len = entry["seq_len"]
    if isinstance(seq_len, bool) or not isinstance(seq_len, (int, np.integer)):
        raise VavaError(f"{where}: seq_len must be an integer, got {reprlib.repr(seq_len)}")
    if labels.size != seq_len:
        raise VavaError(f"{where}: frame_label has {labels.size} entries but seq_len is {seq_len}")
    return _record(video_id, path, split, labels, confined_to)


def _label_array(value: object, where: str) -> np.ndarray:
    """`frame_label` (a tensor, array or list of ints) as a 1-D int64 array."""
    try:
        array = value.numpy() if isinstance(value, torch.Tensor) else np.asarray(value)
    except (ValueError, TypeError, RuntimeError) as err:  # ragged lists; tensors numpy cannot hold
        raise VavaError(f"{where}: frame_label must be a 1-D integer tensor ({str(err).split('. ')[0]})") from None
    if array.ndim != 1 or array.dtype.kind not in "iu":
        raise VavaError(f"{where}: frame_label must be a 1-D integer tensor, got {array.dtype} of shape {array.shape}")
    if array.size > MAX_FRAMES:  # before any copy: a pickle can declare a huge uninitialised array in a few bytes
        raise VavaError(f"{where}: frame_label has {array.size} entries, more than the {MAX_FRAMES} frames a video "
                        "may have")
    return array.astype(np.int64)


# ---------------------------------------------------------------------------------------------
# Fixtures: the same three tiny videos in both layouts

FIXTURE_VIDEOS = (("pour_a", "train"), ("pour_b", "train"), ("pour_c", "val"))
FIXTURE_LABELS = np.array([0, 0, 1, 1, 2, 2])


def fixture_frames(index: int) -> np.ndarray:
    """(6, 8, 8, 3) uint8 RGB noise: the frames of fixture video `index`."""
    return np.random.default_rng(index).integers(0, 256, (FIXTURE_LABELS.size, 8, 8, 3), dtype=np.uint8)


def encode_jpeg(frame: np.ndarray) -> bytes:
    """One (H, W, 3) uint8 RGB frame as JPEG bytes (quality 95, as TCC's converters write them)."""
    buffer = io.BytesIO()
    Image.fromarray(frame).save(buffer, format="JPEG", quality=95)
    return buffer.getvalue()


def tcc_example(name: str, frames: Iterable[np.ndarray], labels: np.ndarray) -> SequenceExample:
    """A video as TCC's converters store it: JPEG frames and per-frame phase ids, video label -1."""
    return SequenceExample(
        context={"name": [name.encode()], "len": np.array([len(labels)]), "label": np.array([-1])},
        feature_lists={"video": [[encode_jpeg(frame)] for frame in frames],
                       "frame_labels": [np.array([label]) for label in labels]})


def write_fixture(out: str | Path) -> None:
    """The fixture videos in the TFRecord layout: `pouring_train-0-of-1.tfrecord` (2 videos) and
    `pouring_val-0-of-1.tfrecord` (1)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    for split in CARL_SPLITS:
        examples = [encode_sequence_example(tcc_example(name, fixture_frames(i), FIXTURE_LABELS))
                    for i, (name, video_split) in enumerate(FIXTURE_VIDEOS) if video_split == split]
        write_records(out / f"{SHARD_PREFIX}{split}-0-of-1.tfrecord", examples)


def write_carl_fixture(out: str | Path) -> None:
    """The fixture videos in the CARL layout: 6-frame mp4s at 25 fps and plain pickles of torch tensors."""
    out = Path(out)
    (out / "videos").mkdir(parents=True, exist_ok=True)
    entries: dict[str, list[dict]] = {split: [] for split in CARL_SPLITS}
    for i, (name, split) in enumerate(FIXTURE_VIDEOS):
        video_file = f"videos/{name}.mp4"
        write_video(out / video_file, fixture_frames(i), 25.0)
        entries[split].append({"id": len(entries[split]), "name": name, "video_file": video_file,
                               "frame_label": torch.from_numpy(FIXTURE_LABELS), "seq_len": FIXTURE_LABELS.size})
    for split, videos in entries.items():
        atomic_write(out / f"{split}.pkl", pickle.dumps(videos))


DATASET = Dataset("pouring", "Pouring (TCC): TFRecord shards, or CARL's mp4s + train/val.pkl; 5 phases",
                  load_pouring, write_fixture, PouringOptions, preset="pouring",
                  evaluation={"kendall_stride": 2})  # TCC's evaluation config
