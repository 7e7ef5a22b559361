"""The zarr (v3) feature store.

Layout of a cache folder::

    CACHE/<fingerprint>/                 one zarr group per feature set (attrs: fingerprint inputs)
        videos/<video_id>/               one group per video (attrs: metadata, `complete` flag)
            features    (T, C, H, W) float16, blosc-zstd, one chunk per frame, sharded
            labels      (T,) int64       phase label of every stored frame
            frame_index (T,) int64       index of every stored frame in the decoded video
    CACHE/.locks/<fingerprint>/<video_id>.lock   advisory locks held while a video is written

A video counts as present only once its `complete` flag is set, which is the last write.
"""
from __future__ import annotations

import datetime as dt
import shutil
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import zarr
from zarr.codecs import BloscCodec
from zarr.errors import ZarrUserWarning

from cache.locks import creation_lock, lock_folder
from pipeline.errors import VavaError

FEATURE_SET_KIND = "vava-feature-set"
FEATURE_DTYPE = "float16"
FRAMES_PER_SHARD = 32
_COMPRESSOR = BloscCodec(cname="zstd", clevel=3, shuffle="shuffle")  # bench/bench_cache.py: beats bitshuffle here


@dataclass(frozen=True)
class CachedVideo:
    """Metadata of one cached video (the features themselves are read on demand)."""

    id: str
    split: str
    action: str
    num_frames: int
    decoded_frames: int
    fps: float | None
    phases: tuple[str, ...]
    background_label: int | None
    complete: bool


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


class FeatureSet:
    """One extracted feature set: open it by path, list videos, read frames, write videos."""

    def __init__(self, path: str | Path, group: zarr.Group):
        self.path = Path(path)
        self._group = group
        self._arrays: dict[str, zarr.Array] = {}

    # -- opening -------------------------------------------------------------------------
    @classmethod
    def open(cls, path: str | Path) -> FeatureSet:
        """Open an existing feature set; `VavaError` if `path` is not one."""
        path = Path(path)
        if not (path / "zarr.json").is_file():
            raise VavaError(f"{path}: not a feature set (no zarr.json; run `vava extract` or `vava cache ls`)")
        group = zarr.open_group(store=str(path), mode="r+")
        if group.attrs.get("kind") != FEATURE_SET_KIND:
            raise VavaError(f"{path}: zarr group is not a vava feature set")
        return cls(path, group)

    @classmethod
    def create(cls, path: str | Path, fingerprint: str, inputs: dict[str, Any], extra: dict[str, Any]) -> FeatureSet:
        """Open the feature set at `path`, creating it with these attributes if it is new."""
        path = Path(path)
        with creation_lock(path):
            if not (path / "zarr.json").is_file():
                # The root's metadata is written last: once it exists, so does `videos`.
                zarr.open_group(store=str(path / "videos"), mode="a")
                zarr.open_group(store=str(path), mode="a", attributes={
                    "kind": FEATURE_SET_KIND, "fingerprint": fingerprint, "inputs": inputs, "created": _now(), **extra})
        return cls.open(path)

    @property
    def fingerprint(self) -> str:
        return str(self._group.attrs["fingerprint"])

    @property
    def attrs(self) -> dict[str, Any]:
        return dict(self._group.attrs)

    @property
    def _videos(self) -> zarr.Group:
        return self._group["videos"]

    # -- reading -------------------------------------------------------------------------
    def videos(self, *, include_incomplete: bool = False) -> list[CachedVideo]:
        """Cached videos in id order; only complete ones unless asked."""
        found = []
        with warnings.catch_warnings():
            # a video another process is creating right now has a folder but no metadata yet
            warnings.simplefilter("ignore", ZarrUserWarning)
            groups = sorted(self._videos.groups())
        for video_id, group in groups:
            meta = self._describe(video_id, group.attrs)
            if meta.complete or include_incomplete:
                found.append(meta)
        return found

    def video(self, video_id: str) -> CachedVideo:
        """Metadata of one complete video; `VavaError` when absent or incomplete."""
        meta = self._describe(video_id, self._video_group(video_id).attrs)
        if not meta.complete:
            raise VavaError(f"{self.path}: video {video_id!r} is incomplete (rerun `vava extract`)")
        return meta

    def is_complete(self, video_id: str) -> bool:
        try:
            return bool(self._videos[video_id].attrs.get("complete", False))
        except (KeyError, ValueError):
            return False

    def read(self, video_id: str, indices: np.ndarray | list[int] | slice | None = None) -> np.ndarray:
        """conv4 maps (k, C, H, W) float16 of the given frame indices (all frames by default)."""
        array = self._array(video_id)
        if indices is None or isinstance(indices, slice):
            return array[indices if indices is not None else slice(None)]
        indices = np.asarray(indices, dtype=np.int64)
        if indices.size and (indices.min() < 0 or indices.max() >= array.shape[0]):
            raise IndexError(f"video {video_id!r} has {array.shape[0]} frames; asked for {indices.min()}..{indices.max()}")
        # Orthogonal selection wants unique sorted indices; map back to the asked order.
        unique, inverse = np.unique(indices, return_inverse=True)
        return array.oindex[unique][inverse]

    def frame_shape(self, video_id: str) -> tuple[int, int, int]:
        """(C, H, W) of one cached frame."""
        return tuple(self._array(video_id).shape[1:])

    def labels(self, video_id: str) -> np.ndarray:
        return self._video_group(video_id, complete=True)["labels"][:]

    def frame_index(self, video_id: str) -> np.ndarray:
        return self._video_group(video_id, complete=True)["frame_index"][:]

    def load(self, video_ids: list[str] | None = None, device: str | None = None) -> dict[str, Any]:
        """Load whole videos into memory: numpy arrays, or torch tensors on `device` when given."""
        ids = video_ids if video_ids is not None else [v.id for v in self.videos()]
        arrays = {video_id: self.read(video_id) for video_id in ids}
        if device is None:
            return arrays
        import torch

        return {video_id: torch.from_numpy(a).to(device) for video_id, a in arrays.items()}

    def _video_group(self, video_id: str, complete: bool = False) -> zarr.Group:
        try:
            group = self._videos[video_id]
        except KeyError:
            raise VavaError(f"{self.path}: no video {video_id!r} in this feature set") from None
        if complete and not group.attrs.get("complete", False):
            raise VavaError(f"{self.path}: video {video_id!r} is incomplete (rerun `vava extract`)")
        return group

    def _array(self, video_id: str) -> zarr.Array:
        if video_id not in self._arrays:
            self._arrays[video_id] = self._video_group(video_id, complete=True)["features"]
        return self._arrays[video_id]

    @staticmethod
    def _describe(video_id: str, attrs: Any) -> CachedVideo:
        return CachedVideo(
            id=video_id,
            split=attrs.get("split", "?"),
            action=attrs.get("action", "?"),
            num_frames=int(attrs.get("num_frames", 0)),
            decoded_frames=int(attrs.get("decoded_frames", 0)),
            fps=attrs.get("fps"),
            phases=tuple(attrs.get("phases", ())),
            background_label=attrs.get("background_label"),
            complete=bool(attrs.get("complete", False)),
        )

    # -- writing -------------------------------------------------------------------------
    def begin_video(self, video_id: str, frame_shape: tuple[int, int, int], attrs: dict[str, Any]) -> VideoWriter:
        """Start (or restart) writing a video; any partial data of an earlier attempt is dropped.

        The caller must hold the video's lock (see `cache.locks`).
        """
        videos = self._videos
        if video_id in videos:
            del videos[video_id]
        group = videos.create_group(video_id, attributes={**attrs, "complete": False})
        array = group.create_array(
            "features",
            shape=(0, *frame_shape),
            dtype=FEATURE_DTYPE,
            chunks=(1, *frame_shape),
            shards=(FRAMES_PER_SHARD, *frame_shape),
            compressors=_COMPRESSOR,
            fill_value=0,
        )
        return VideoWriter(group, array)

    def remove_video(self, video_id: str) -> None:
        videos = self._videos
        if video_id in videos:
            del videos[video_id]
        self._arrays.pop(video_id, None)


class VideoWriter:
    """Appends a video's frames block by block, then marks it complete (last write)."""

    def __init__(self, group: zarr.Group, array: zarr.Array):
        self._group = group
        self._array = array
        self.frames_written = 0

    def append(self, block: np.ndarray) -> None:
        self._array.append(block.astype(FEATURE_DTYPE, copy=False), axis=0)
        self.frames_written += int(block.shape[0])

    def finish(self, labels: np.ndarray, frame_index: np.ndarray, attrs: dict[str, Any]) -> None:
        """Cut the features to `len(labels)` frames, store labels/indices, then set `complete`."""
        num_frames = int(labels.shape[0])
        if num_frames > self.frames_written:
            raise ValueError(f"{num_frames} labels for {self.frames_written} written frames")
        if num_frames < self.frames_written:
            self._array.resize((num_frames, *self._array.shape[1:]))
        self._group.create_array("labels", data=np.asarray(labels, dtype=np.int64))
        self._group.create_array("frame_index", data=np.asarray(frame_index, dtype=np.int64))
        self._group.attrs.update({**attrs, "num_frames": num_frames, "written": _now(), "complete": True})


def open_feature_sets(cache: str | Path) -> list[FeatureSet]:
    """Every feature set under a cache folder, in fingerprint order."""
    cache = Path(cache)
    if not cache.is_dir():
        raise VavaError(f"cache folder {cache} does not exist")
    sets = []
    for child in sorted(cache.iterdir()):
        if child.is_dir() and (child / "zarr.json").is_file():
            try:
                sets.append(FeatureSet.open(child))
            except VavaError:
                continue
    return sets


def disk_usage(path: Path) -> int:
    """Bytes on disk of every file below `path`."""
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def remove_feature_set(path: str | Path) -> None:
    """Delete a feature set and its lock folder."""
    feature_set = FeatureSet.open(path)
    shutil.rmtree(feature_set.path)
    shutil.rmtree(lock_folder(feature_set.path), ignore_errors=True)
