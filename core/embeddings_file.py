"""The embeddings-file artefact (RUN/embeddings.h5): its writer and its reader, the only places that
know its layout. Readable with plain h5py::

    /videos/<id>/embeddings  (T, D) float32
    /videos/<id>/labels      (T,)   int64
    /videos/<id>/frame_index (T,)   int64     frame of the decoded video each row belongs to
    /videos/<id>/flags       (T,)   uint8     per-frame flag bits (`vava.core.records.FRAME_FLAGS`);
                                              absent in older files, read as zeros
    group attrs: id, split, action, fps, phases, background_label (-1 = none)
    file attrs:  run, embedder ("trained" | "identity"), checkpoint, step, objective, feature_set,
                 fingerprint, splits, created (run, checkpoint and feature_set as absolute paths);
                 identity files add identity_kind (one of IDENTITY_KINDS; older ones lack it and
                 are "features"), and "features-standardised" files the source of their statistics

Reading gives validated per-video records (`load_embeddings`). A video whose every label is
UNLABELLED is an unlabelled one: it is read like any other (probes that need labels leave it out).

Order: the videos of a split are sorted by the natural order of their ids ("v2" before "v10"; ties,
such as "v01" and "v1", by the plain string). Phase classification takes the *first* n train
videos in this order. The TCC TFRecord interleave order only matters for the real Pouring and Penn
Action files, which this project does not read.

Background (`background`):
- "keep" ("with background"): every frame is evaluated; background is one more class.
- "drop" ("without background"): frames labelled `background_label` are removed before any probe,
  so each video becomes its labelled frames in time order, and labels above the background label
  move down by one so the phases are numbered 0..C-1 again (the same renumbering for every video
  of an action, since they share one phase list).
"""
from __future__ import annotations

import datetime as dt
import glob
import io
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

import h5py
import numpy as np

from vava.core.errors import VavaError
from vava.core.files import atomic_write
from vava.core.validation import option_error

EMBEDDINGS_NAME = "embeddings.h5"

BACKGROUND_MODES = ("keep", "drop")
UNLABELLED = -1
NO_BACKGROUND = -1

# What an identity (no training) file embeds each frame by, and the label of its row in the tables.
IDENTITY_KINDS = {"features": "frozen features (raw)", "features-standardised": "frozen features (standardised)",
                  "time": "time only"}


@dataclass(frozen=True, eq=False)
class VideoEmbeddings:
    """One video's per-frame embeddings and phase labels."""

    id: str
    split: str
    action: str
    embeddings: np.ndarray = field(repr=False)  # (T, D) float32
    labels: np.ndarray = field(repr=False)      # (T,) int64; UNLABELLED where unknown
    phases: tuple[str, ...] = ()                # phase names indexed by label
    background_label: int = NO_BACKGROUND
    flags: np.ndarray | None = field(default=None, repr=False)  # (T,) uint8; None becomes zeros

    def __post_init__(self) -> None:
        if self.flags is None:
            object.__setattr__(self, "flags", np.zeros(self.labels.shape[0], dtype=np.uint8))

    @property
    def num_frames(self) -> int:
        return int(self.labels.shape[0])


@dataclass(frozen=True)
class EmbeddingsFile:
    """The videos of an embeddings file, in the documented order, and the file's attributes."""

    path: Path
    attrs: dict[str, object]
    videos: list[VideoEmbeddings]

    def split(self, name: str) -> list[VideoEmbeddings]:
        return [v for v in self.videos if v.split == name]

    def actions(self) -> list[str]:
        return sorted({v.action for v in self.videos}, key=natural_key)


def part_path(path: Path, rank: int) -> Path:
    """The file beside embeddings file `path` that rank `rank` of a `torchrun` embed writes its videos into."""
    return path.with_name(f".{path.name}.rank{rank}.part")


def part_paths(path: Path) -> list[Path]:
    """The part files of embeddings file `path` there are, of whichever ranks (a job that died leaves its own)."""
    return sorted(path.parent.glob(f".{glob.escape(path.name)}.rank*.part"))


class VideoInfo(Protocol):
    """What the writer needs to know of a video (a cached video's metadata has it)."""

    id: str
    split: str
    action: str
    fps: float | None
    phases: tuple[str, ...]
    background_label: int | None


class EmbeddingsWriter:
    """Writes an embeddings file video by video; the file appears, by create-and-rename, when the block ends.

    ``with EmbeddingsWriter(path, attrs) as writer: writer.add(video, rows, labels, frame_index, flags)``;
    an error inside the block leaves `path` as it was.

    The HDF5 file is built in memory (as large as the file; `load_embeddings` holds as much) and
    written by `atomic_write`: HDF5 failing to write to a full disk can crash the process, while
    `atomic_write` reports it in one line and removes its temporary file.
    """

    def __init__(self, path: str | Path, attrs: dict[str, Any]):
        self.path = Path(path)
        self.attrs = {**attrs, "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")}
        self._buffer = io.BytesIO()
        self._handle: h5py.File | None = None

    def __enter__(self) -> EmbeddingsWriter:
        self._handle = h5py.File(self._buffer, "w")
        self._handle.attrs.update(self.attrs)
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *exc: object) -> None:
        self._handle.close()
        if exc_type is None:
            atomic_write(self.path, self._buffer.getbuffer())
        self._buffer = io.BytesIO()  # the file's bytes are not kept

    def copy_video(self, source: h5py.File, video_id: str) -> None:
        """Store a video as another embeddings file (`source`, open) holds it: a rank's part of a sharded embed."""
        source.copy(source[f"videos/{video_id}"], self._handle.require_group("videos"), name=video_id)

    def add(self, video: VideoInfo, embeddings: np.ndarray, labels: np.ndarray, frame_index: np.ndarray,
            flags: np.ndarray) -> None:
        """Store one video's (T, D) embeddings with its labels, frame indices and (T,) uint8 flag bits."""
        flags = np.asarray(flags)
        if flags.dtype != np.uint8 or flags.shape != (embeddings.shape[0],):
            raise VavaError(f"{self.path}: video {video.id!r}: flags must be a ({embeddings.shape[0]},) uint8 array, "
                            f"got {flags.dtype} of shape {flags.shape}")
        group = self._handle.create_group(f"videos/{video.id}")
        group.create_dataset("embeddings", data=embeddings.astype(np.float32))
        group.create_dataset("labels", data=labels)
        group.create_dataset("frame_index", data=frame_index)
        group.create_dataset("flags", data=flags)
        group.attrs.update({"id": video.id, "split": video.split, "action": video.action, "fps": video.fps or 0.0,
                            "phases": list(video.phases),
                            "background_label": NO_BACKGROUND if video.background_label is None
                            else video.background_label})


def time_only(num_frames: int) -> np.ndarray:
    """(T, 1) float32: t / T for the stored frames t = 0..T-1 (0 for the first, (T-1)/T for the last)."""
    return (np.arange(num_frames, dtype=np.float64) / num_frames).astype(np.float32)[:, None]


def time_only_file(path: str | Path, background: str = "keep") -> EmbeddingsFile:
    """The videos of embeddings file `path` with every stored frame embedded by its time alone (`time_only`),
    as `vava embed --identity time` writes them, read as `load_embeddings` reads (background dropped after)."""
    data = load_embeddings(path)
    videos = [replace(v, embeddings=time_only(v.num_frames)) for v in data.videos]
    if background == "drop":
        videos = [without_background(data.path, v) for v in videos]
    return EmbeddingsFile(data.path, {**data.attrs, "embedder": "identity", "identity_kind": "time"}, videos)


def identity_kind(attrs: dict[str, object]) -> str | None:
    """The identity kind of a file's attrs (None for a trained embedder; "features" for files older than kinds)."""
    return str(attrs.get("identity_kind", "features")) if attrs.get("embedder") == "identity" else None


def natural_key(text: str) -> tuple[list[int | str], str]:
    """Sort key: digit runs compare as numbers ("v2" < "v10"); the raw string breaks ties."""
    chunks = re.split(r"(\d+)", text)
    return [int(c) if i % 2 else c for i, c in enumerate(chunks)], text


def load_embeddings(path: str | Path, background: str = "keep") -> EmbeddingsFile:
    """Read and validate every video of `path`; see the module docstring for order and background."""
    path = Path(path)
    if background not in BACKGROUND_MODES:
        raise option_error("background", f"{background!r} is not one of {', '.join(BACKGROUND_MODES)}")
    if not path.is_file():
        raise VavaError(f"{path}: no such file (write it with `vava embed`)")
    try:
        with h5py.File(path, "r") as handle:
            attrs = {key: plain(value) for key, value in handle.attrs.items()}
            groups = handle.get("videos")
            if not isinstance(groups, h5py.Group) or not len(groups):
                raise VavaError(f"{path}: no videos in the file")
            videos = [_read_video(path, groups[name]) for name in groups]
    except OSError as error:
        raise VavaError(f"{path}: not a readable HDF5 file ({error})") from None
    _check_dimensions(path, videos)
    if background == "drop":
        videos = [without_background(path, v) for v in videos]
    order = {"train": 0, "val": 1, "test": 2}
    videos.sort(key=lambda v: (order.get(v.split, 2), v.split, natural_key(v.id)))
    return EmbeddingsFile(path, attrs, videos)


def without_background(path: Path, video: VideoEmbeddings) -> VideoEmbeddings:
    """The video's non-background frames, with the phases renumbered 0..C-1."""
    bg = video.background_label
    if bg == NO_BACKGROUND:
        return video
    keep = video.labels != bg
    if not keep.any():
        raise VavaError(f"{path}: video {video.id!r}: every frame is background, none is left without it")
    labels = video.labels[keep]
    labels = np.where(labels > bg, labels - 1, labels)
    phases = video.phases[:bg] + video.phases[bg + 1:] if bg < len(video.phases) else video.phases
    return replace(video, embeddings=video.embeddings[keep], labels=labels, phases=phases,
                   background_label=NO_BACKGROUND, flags=video.flags[keep])


def plain(value: object) -> object:
    """An HDF5 attribute as a JSON-ready Python value."""
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, np.ndarray):
        return [plain(v) for v in value.tolist()]
    if isinstance(value, np.generic):
        return value.item()
    return value


def _read_video(path: Path, group: h5py.Group) -> VideoEmbeddings:
    name = group.name.rsplit("/", 1)[-1]
    where = f"{path}: video {name!r}"
    if "embeddings" not in group or "labels" not in group:
        raise VavaError(f"{where}: needs both 'embeddings' and 'labels' datasets")
    embeddings = np.asarray(group["embeddings"][()], dtype=np.float32)
    labels = np.asarray(group["labels"][()]).astype(np.int64)
    if embeddings.ndim != 2 or embeddings.shape[0] == 0 or embeddings.shape[1] == 0:
        raise VavaError(f"{where}: embeddings must be a non-empty (T, D) array, found shape {embeddings.shape}")
    if labels.shape != (embeddings.shape[0],):
        raise VavaError(f"{where}: {labels.shape[0] if labels.ndim == 1 else labels.shape} labels "
                        f"for {embeddings.shape[0]} frames")
    bad = ~np.isfinite(embeddings).all(axis=1)
    if bad.any():
        frames = np.flatnonzero(bad)
        raise VavaError(f"{where}: NaN or infinite embeddings in {frames.size} frame(s), first at frame {frames[0]}")
    if (labels < UNLABELLED).any():
        raise VavaError(f"{where}: labels must be >= {UNLABELLED} (-1 = unknown), found {labels.min()}")
    attrs = group.attrs
    phases = plain(attrs.get("phases", []))
    return VideoEmbeddings(
        id=str(plain(attrs.get("id", name))), split=str(plain(attrs.get("split", ""))),
        action=str(plain(attrs.get("action", ""))), embeddings=embeddings, labels=labels,
        phases=tuple(str(p) for p in (phases if isinstance(phases, list) else [phases])),
        background_label=int(plain(attrs.get("background_label", NO_BACKGROUND))),
        flags=_read_flags(where, group, labels.shape[0]))


def _read_flags(where: str, group: h5py.Group, frames: int) -> np.ndarray | None:
    """The video's (T,) uint8 flags; None (zeros) when the file has none."""
    if "flags" not in group:
        return None
    flags = group["flags"]
    if flags.dtype != np.uint8 or flags.shape != (frames,):
        raise VavaError(f"{where}: flags must be a ({frames},) uint8 array, found {flags.dtype} of shape {flags.shape}")
    return flags[()]


def _check_dimensions(path: Path, videos: list[VideoEmbeddings]) -> None:
    dims = {v.embeddings.shape[1] for v in videos}
    if len(dims) > 1:
        first = videos[0]
        other = next(v for v in videos if v.embeddings.shape[1] != first.embeddings.shape[1])
        raise VavaError(f"{path}: videos disagree on the embedding size: {first.id!r} has "
                        f"{first.embeddings.shape[1]}, {other.id!r} has {other.embeddings.shape[1]}")

