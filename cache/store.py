"""The zarr (v3) feature store.

Layout of a cache folder::

    CACHE/<fingerprint>/                 one zarr group per feature set (attrs: `inputs`, see `vava.cache.inputs`;
                                         `members`)
        videos/<name>/                   one group per video, named `stored_name(video id)` (the id itself,
                                         `__x` as `%5F_x`; attrs: metadata, `member_key`, `files`, `complete` flag)
            features    (T, C, H, W) float16, blosc-zstd, one chunk per frame, sharded
            labels      (T,) int64       phase label of every stored frame
            frame_index (T,) int64       index of every stored frame in the decoded video
            flags       (T,) uint8       per-frame flag bits (only when the manifest gives `flags`)
    CACHE/.locks/<fingerprint>/videos/<name>.lock  advisory locks held while a video is written
    CACHE/.locks/<fingerprint>/set.lock          held by writers (shared) and `cache rm` (exclusive)

A video counts as present only once its `complete` flag is set, which is the last write. Every
chunk carries a CRC-32C checksum, so changed bytes fail to read; and `files` records the size of
every file of the video at completion, because zarr reads a missing shard as zeros without error.
The set's `members` map each video id it was extracted for to a key that the video's folder records:
any other folder in `videos/` (copied from another set, or from another video) is foreign, reported by
`videos(include_incomplete=True)` and never read as a video. (Sets made before members accept any folder.)
A feature set is opened read-only; it is reopened for writing only when a video is written.

CACHE may also be an object-storage URL (`s3://bucket/prefix`, see `vava.core.location`): the same hierarchy,
object for file, through zarr's FsspecStore, without the lock folder. There each object is written whole, so the
`complete` flag written last and the sizes checked against one listing keep readers safe without locks.
"""
from __future__ import annotations

import contextlib
import datetime as dt
import functools
import shutil
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import zarr
from zarr.abc.store import ByteRequest
from zarr.codecs import BloscCodec, Crc32cCodec
from zarr.core.buffer import Buffer, BufferPrototype
from zarr.storage import LocalStore

from vava.cache.inputs import FeatureInputs
from vava.cache.locks import creation_lock, lock_folder, set_lock
from vava.core.errors import VavaError, invocation, option_name, quoted
from vava.core.files import check_regular
from vava.core.location import STORAGE_OPTIONS, RemotePath, as_location, storage_reason, unreachable
from vava.core.records import stored_name, video_id_of

FEATURE_SET_KIND = "vava-feature-set"
FEATURE_DTYPE = "float16"
FRAMES_PER_SHARD = 32
FOREIGN = "not one of the videos this feature set was extracted for (copied from another set?)"
_COMPRESSOR = BloscCodec(cname="zstd", clevel=3, shuffle="shuffle")  # bench/bench_cache.py: beats bitshuffle here
_CODECS = (_COMPRESSOR, Crc32cCodec())  # the checksum covers the compressed bytes: cheap to verify


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
    problem: str | None = None  # why its folder is not a readable video (then it is not complete)
    checksummed: bool = True    # False for videos written before checksums (format 1)
    source_path: str | None = None     # the video file or frame folder it was extracted from
    manifest_fps: float | None = None  # the frame rate the manifest gave it (frame folders need one)
    source_member: int | None = None   # its record's byte offset when the source holds many (a TFRecord shard)
    foreign: bool = False              # its folder is not one of the set's members (then it is not complete)


class DamagedVideo(VavaError):
    """A complete video whose stored data no longer reads back as it was written."""

    def __init__(self, path: Path, video_id: str, problem: str):
        super().__init__(f"{path}: video {video_id!r} is damaged: {problem} "
                         f"(re-extract it: `{invocation('extract', repair=True)}` with the same options)")
        self.video_id = video_id
        self.problem = problem


def _stray(video_id: str, problem: str) -> CachedVideo:
    """A folder of `videos/` that is no readable video, and why."""
    return CachedVideo(video_id, "?", "?", 0, 0, None, (), None, complete=False, problem=problem)


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def _one_line(err: Exception) -> str:
    return " ".join(str(err).split()) if isinstance(err, VavaError) else storage_reason(err)


class _PlainFileStore(LocalStore):
    """zarr's local store that reads regular files only: a FIFO or device planted in a feature set is
    refused (`VavaError`), never opened, since reading it would block forever."""

    async def get(self, key: str, prototype: BufferPrototype | None = None,
                  byte_range: ByteRequest | None = None) -> Buffer | None:
        check_regular(self.root / key)
        return await super().get(key, prototype, byte_range)

    async def get_partial_values(self, prototype: BufferPrototype,
                                 key_ranges: Iterable[tuple[str, ByteRequest | None]]) -> list[Buffer | None]:
        key_ranges = list(key_ranges)
        for key, _ in key_ranges:
            check_regular(self.root / key)
        return await super().get_partial_values(prototype, key_ranges)


Location = Path | RemotePath  # a local folder or a folder in object storage (`vava.core.location`)


def _store(path: Location, read_only: bool) -> zarr.abc.store.Store:
    """The zarr store of a folder: local (plain files only) or in object storage."""
    if isinstance(path, RemotePath):
        from zarr.storage import FsspecStore

        with path.errors("open the object storage"):
            return FsspecStore.from_url(str(path), storage_options=STORAGE_OPTIONS, read_only=read_only)
    return _PlainFileStore(path, read_only=read_only)


def _is_plain_file(path: Location) -> bool:
    """Whether `path` is a file; a FIFO or device planted there locally is refused (`VavaError`)."""
    return path.is_file() if isinstance(path, RemotePath) else check_regular(path).is_file()


def _file_sizes(folder: Location) -> dict[str, int]:
    """Size of every file below a video's folder except its own zarr.json (rewritten to mark it complete)."""
    if isinstance(folder, RemotePath):
        sizes = folder.sizes()
    else:
        sizes = {f.relative_to(folder).as_posix(): f.stat().st_size for f in sorted(folder.rglob("*")) if f.is_file()}
    sizes.pop("zarr.json", None)
    return sizes


@contextlib.contextmanager
def _writing_to(path: Location, doing: str) -> Iterator[None]:
    """Failures to reach object storage within the block as one-line errors (local paths: unchanged)."""
    with path.errors(doing) if isinstance(path, RemotePath) else contextlib.nullcontext():
        yield


class FeatureSet:
    """One extracted feature set: open it by path, list videos, read frames, write videos."""

    def __init__(self, path: str | Location, group: zarr.Group):
        self.path = as_location(path)
        self._group = group
        self._writable: zarr.Group | None = None
        self._arrays: dict[str, zarr.Array] = {}
        self._checked: set[str] = set()  # complete videos whose files were found as recorded

    # -- opening -------------------------------------------------------------------------
    @classmethod
    def open(cls, path: str | Location) -> FeatureSet:
        """Open an existing feature set (read-only); `VavaError` if `path` (a folder or URL) is not one."""
        path = as_location(path)
        if not _is_plain_file(path / "zarr.json"):
            raise VavaError(f"{path}: not a feature set (no zarr.json; run `vava extract` or `vava cache ls`)")
        try:
            group = zarr.open_group(store=_store(path, read_only=True), mode="r")
            kind = group.attrs.get("kind")
        except Exception as err:  # whatever zarr makes of a damaged zarr.json
            raise VavaError(f"{path}: unreadable zarr.json ({_one_line(err)})") from None
        if kind != FEATURE_SET_KIND:
            raise VavaError(f"{path}: zarr group is not a vava feature set")
        return cls(path, group)

    @classmethod
    def create(cls, path: str | Location, fingerprint: str, inputs: FeatureInputs, extra: dict[str, Any],
               members: dict[str, str] | None = None) -> FeatureSet:
        """Open the feature set at `path`, creating it with these attributes (and `members`, video id -> key,
        see `vava.cache.fingerprint.SetFingerprint`) if it is new.

        An existing set is opened without writing anything (no lock either), so a read-only
        cache can still be checked.
        """
        path = as_location(path)
        if not (path / "zarr.json").is_file():
            with creation_lock(path), _writing_to(path, "create the feature set"):
                if not (path / "zarr.json").is_file():
                    # The root's metadata is written last: once it exists, so does `videos`.
                    zarr.open_group(store=_store(path / "videos", read_only=False), mode="a")
                    zarr.open_group(store=_store(path, read_only=False), mode="a", attributes={
                        "kind": FEATURE_SET_KIND, "fingerprint": fingerprint, "inputs": inputs.attrs(),
                        "created": _now(), **extra, **({} if members is None else {"members": members})})
        return cls.open(path)

    @contextlib.contextmanager
    def writing(self) -> Iterator[None]:
        """Hold the set's lock (shared with other writers) so that `cache rm` waits for the writes."""
        with set_lock(self.path, shared=True):
            if not (self.path / "zarr.json").is_file():
                raise VavaError(f"{self.path}: the feature set was removed (`vava cache rm`) meanwhile; "
                                "run `vava extract` again")
            yield

    @property
    def fingerprint(self) -> str:
        return str(self._group.attrs["fingerprint"])

    @property
    def attrs(self) -> dict[str, Any]:
        return dict(self._group.attrs)

    @functools.cached_property
    def inputs(self) -> FeatureInputs:
        """What the set was extracted from and how; a `VavaError` naming the set when they are damaged."""
        return FeatureInputs.from_attrs(self._group.attrs.get("inputs"), self.path)

    @functools.cached_property
    def _members(self) -> dict[str, str] | None:
        members = self._group.attrs.get("members")
        return members if isinstance(members, dict) else None

    def _belongs(self, video_id: str, attrs: Any) -> bool:
        """Whether the folder `video_id`, with these attributes, is one of the set's members."""
        return self._members is None or self._members.get(video_id, False) == attrs.get("member_key")

    @property
    def _videos(self) -> zarr.Group:
        try:
            return self._group["videos"]
        except Exception as err:
            raise VavaError(f"{self.path}: unreadable videos group ({_one_line(err)})") from None

    # -- reading -------------------------------------------------------------------------
    def videos(self, *, include_incomplete: bool = False) -> list[CachedVideo]:
        """Cached videos in id order; only complete ones unless asked.

        Asked for incomplete ones too, folders that are no readable video come with their `problem`.
        """
        videos = self._videos
        found = []
        for folder in (p for p in (self.path / "videos").iterdir() if p.is_dir()):
            video_id = video_id_of(folder.name)
            if video_id is None:
                meta = _stray(folder.name, "stray folder (its name is no video id's stored name)")
            else:
                meta = self._member(videos, video_id)
            if meta.complete or include_incomplete:
                found.append(meta)
        return sorted(found, key=lambda video: video.id)

    def _member(self, videos: zarr.Group, video_id: str) -> CachedVideo:
        try:
            attrs = videos[stored_name(video_id)].attrs
            if not self._belongs(video_id, attrs):
                return CachedVideo(video_id, "?", "?", 0, 0, None, (), None, complete=False, problem=FOREIGN,
                                   foreign=True)
            return self._describe(video_id, attrs)
        except KeyError:
            problem = "stray folder (no zarr.json)"
        except Exception as err:  # one bad zarr.json must not hide the other videos
            problem = f"unreadable metadata ({_one_line(err)})"
        return _stray(video_id, problem)

    def video(self, video_id: str) -> CachedVideo:
        """Metadata of one complete video; `VavaError` when absent or incomplete."""
        meta = self._describe(video_id, self._video_group(video_id).attrs)
        if not meta.complete:
            raise VavaError(f"{self.path}: video {video_id!r} is incomplete (rerun `vava extract`)")
        return meta

    def is_complete(self, video_id: str) -> bool:
        videos = self._videos
        try:
            attrs = videos[stored_name(video_id)].attrs
            return bool(attrs.get("complete", False)) and self._belongs(video_id, attrs)
        except Exception:  # absent, or metadata unreadable: either way it has to be extracted (again)
            return False

    def read(self, video_id: str, indices: np.ndarray | list[int] | slice | None = None) -> np.ndarray:
        """conv4 maps (k, C, H, W) float16 of the given frame indices (all frames by default).

        `DamagedVideo` when the stored data does not read back as written.
        """
        array = self._array(video_id)
        if indices is None or isinstance(indices, slice):
            with self._reading(video_id):
                return array[indices if indices is not None else slice(None)]
        indices = np.asarray(indices, dtype=np.int64)
        if indices.size and (indices.min() < 0 or indices.max() >= array.shape[0]):
            raise IndexError(f"video {video_id!r} has {array.shape[0]} frames; asked for {indices.min()}..{indices.max()}")
        # Orthogonal selection wants unique sorted indices; map back to the asked order.
        unique, inverse = np.unique(indices, return_inverse=True)
        with self._reading(video_id):
            return array.oindex[unique][inverse]

    def frame_shape(self, video_id: str) -> tuple[int, int, int]:
        """(C, H, W) of one cached frame."""
        return tuple(self._array(video_id).shape[1:])

    def map_shape(self) -> tuple[int, int, int] | None:
        """(C, H, W) of the cached maps of the set's first complete video (None while there is none)."""
        videos = self.videos()
        return self.frame_shape(videos[0].id) if videos else None

    def labels(self, video_id: str) -> np.ndarray:
        return self._stored(video_id, "labels")

    def frame_index(self, video_id: str) -> np.ndarray:
        return self._stored(video_id, "frame_index")

    def flags(self, video_id: str) -> np.ndarray:
        """Per-frame flag bits (`vava.core.records.FRAME_FLAGS`) of every stored frame; zeros when none were given."""
        group = self._complete_group(video_id)
        if "flags" not in group:
            return np.zeros(int(group.attrs.get("num_frames", 0)), dtype=np.uint8)
        with self._reading(video_id):
            return group["flags"][:].astype(np.uint8)

    def file_problem(self, video_id: str) -> str | None:
        """How a complete video's files differ from those recorded at its completion, or None.

        Videos written before checksums (format 1) have no record, so nothing to compare.
        """
        expected = self._video_group(video_id, complete=True).attrs.get("files")
        if expected is None:
            return None
        found = _file_sizes(self.path / "videos" / stored_name(video_id))
        for name, size in expected.items():
            actual = found.get(name)
            if actual is None:
                return f"{name} is missing"
            if actual != size:
                return f"{name} has {actual} bytes, {size} when written"
        return None

    def load(self, video_ids: list[str] | None = None, device: str | None = None) -> dict[str, Any]:
        """Load whole videos into memory: numpy arrays, or torch tensors on `device` when given."""
        ids = video_ids if video_ids is not None else [v.id for v in self.videos()]
        arrays = {video_id: self.read(video_id) for video_id in ids}
        if device is None:
            return arrays
        import torch

        return {video_id: torch.from_numpy(a).to(device) for video_id, a in arrays.items()}

    def _video_group(self, video_id: str, complete: bool = False) -> zarr.Group:
        videos = self._videos
        try:
            group = videos[stored_name(video_id)]
        except KeyError:
            raise VavaError(f"{self.path}: no video {video_id!r} in this feature set") from None
        except Exception as err:
            raise DamagedVideo(self.path, video_id, f"unreadable metadata ({_one_line(err)})") from None
        if not self._belongs(video_id, group.attrs):
            raise VavaError(f"{self.path}: video folder {video_id!r} is {FOREIGN}")
        if complete and not group.attrs.get("complete", False):
            raise VavaError(f"{self.path}: video {video_id!r} is incomplete (rerun `vava extract`)")
        return group

    def _complete_group(self, video_id: str) -> zarr.Group:
        """The group of a complete video, after checking (once per handle) that its files are whole and its
        arrays have the shapes its metadata gives."""
        group = self._video_group(video_id, complete=True)
        if video_id not in self._checked:
            problem = self.file_problem(video_id)
            if problem is None:
                with self._reading(video_id):
                    problem = _shape_problem(group)
            if problem:
                raise DamagedVideo(self.path, video_id, problem)
            self._checked.add(video_id)
        return group

    @contextlib.contextmanager
    def _reading(self, video_id: str) -> Iterator[None]:
        """Turn any failure to decode a video's stored data into `DamagedVideo` naming the video."""
        try:
            yield
        except VavaError:
            raise
        except Exception as err:  # checksum mismatch, cut shard, bad array metadata: whatever zarr raised
            if isinstance(self.path, RemotePath) and unreachable(err):  # the storage failed, not the data
                raise VavaError(f"{self.path}: cannot read video {video_id!r} ({storage_reason(err)})") from None
            raise DamagedVideo(self.path, video_id, _one_line(err)) from None

    def _array(self, video_id: str) -> zarr.Array:
        if video_id not in self._arrays:
            group = self._complete_group(video_id)
            with self._reading(video_id):
                self._arrays[video_id] = group["features"]
        return self._arrays[video_id]

    def _stored(self, video_id: str, name: str) -> np.ndarray:
        group = self._complete_group(video_id)
        with self._reading(video_id):
            return group[name][:]

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
            checksummed="files" in attrs,
            source_path=attrs.get("source_path"),
            manifest_fps=attrs.get("manifest_fps"),
            source_member=attrs.get("source_member"),
        )

    # -- writing -------------------------------------------------------------------------
    def begin_video(self, video_id: str, frame_shape: tuple[int, int, int], attrs: dict[str, Any]) -> VideoWriter:
        """Start (or restart) writing a video; any partial data of an earlier attempt is dropped.

        The caller must hold the video's lock (see `vava.cache.locks`).
        """
        if self._members is not None:
            if video_id not in self._members:
                raise VavaError(f"{self.path}: video {video_id!r} is not one of this feature set's videos")
            attrs = {**attrs, "member_key": self._members[video_id]}
        self.remove_video(video_id)
        name = stored_name(video_id)
        group = self._writable_videos.create_group(name, attributes={**attrs, "frame_shape": list(frame_shape),
                                                                     "complete": False})
        array = group.create_array(
            "features",
            shape=(0, *frame_shape),
            dtype=FEATURE_DTYPE,
            chunks=(1, *frame_shape),
            shards=(FRAMES_PER_SHARD, *frame_shape),
            compressors=_CODECS,
            fill_value=0,
        )
        return VideoWriter(group, array, self.path / "videos" / name)

    def remove_video(self, video_id: str) -> None:
        """Delete a video's folder, whatever state it is in (the caller holds the video's lock)."""
        name = stored_name(video_id)
        if (self.path / "videos" / name).exists():
            del self._writable_videos[name]
        self._arrays.pop(video_id, None)
        self._checked.discard(video_id)

    @property
    def _writable_videos(self) -> zarr.Group:
        if self._writable is None:
            with _writing_to(self.path, "open the feature set for writing"):
                self._writable = zarr.open_group(store=_store(self.path, read_only=False), mode="r+")["videos"]
        return self._writable


def _shape_problem(group: zarr.Group) -> str | None:
    """How a complete video's arrays differ in shape from its metadata (`num_frames`, and `frame_shape` where
    recorded), or None: an edited shape or count must not be read past (or short of) its data."""
    frames = int(group.attrs.get("num_frames", 0))
    for name in ("features", "labels", "frame_index", "flags"):
        if name == "flags" and name not in group:
            continue
        shape = tuple(group[name].shape)
        expected = (frames, *group.attrs.get("frame_shape", shape[1:])) if name == "features" else (frames,)
        if shape != expected:
            return f"{name} has shape {shape}, its metadata says {expected}"
    return None


class VideoWriter:
    """Appends a video's frames block by block, then marks it complete (last write)."""

    def __init__(self, group: zarr.Group, array: zarr.Array, folder: Location):
        self._group = group
        self._array = array
        self._folder = folder
        self.frames_written = 0

    def append(self, block: np.ndarray) -> None:
        self._array.append(block.astype(FEATURE_DTYPE, copy=False), axis=0)
        self.frames_written += int(block.shape[0])

    def finish(self, labels: np.ndarray, frame_index: np.ndarray, attrs: dict[str, Any],
               flags: np.ndarray | None = None) -> None:
        """Cut the features to `len(labels)` frames, store labels/indices (and per-frame `flags` when given,
        one per label), then set `complete`."""
        num_frames = int(labels.shape[0])
        if num_frames > self.frames_written:
            raise ValueError(f"{num_frames} labels for {self.frames_written} written frames")
        if flags is not None and flags.shape != labels.shape:
            raise ValueError(f"{flags.shape[0]} flags for {num_frames} labels")
        if num_frames < self.frames_written:
            self._array.resize((num_frames, *self._array.shape[1:]))
        self._group.create_array("labels", data=np.asarray(labels, dtype=np.int64), compressors=_CODECS)
        self._group.create_array("frame_index", data=np.asarray(frame_index, dtype=np.int64), compressors=_CODECS)
        if flags is not None:
            self._group.create_array("flags", data=np.asarray(flags, dtype=np.uint8), compressors=_CODECS)
        self._group.attrs.update({**attrs, "num_frames": num_frames, "written": _now(),
                                  "files": _file_sizes(self._folder), "complete": True})


def scan_cache(cache: str | Location) -> tuple[list[FeatureSet], dict[Location, str]]:
    """Every feature set under a cache folder in fingerprint order, and why each other folder was skipped."""
    cache = as_location(cache)
    if not cache.is_dir():
        raise VavaError(f"cache folder {cache} does not exist")
    sets, skipped = [], {}
    for child in sorted(cache.iterdir(), key=lambda child: child.name):
        if not child.is_dir() or child.name.startswith("."):  # .locks
            continue
        try:
            sets.append(FeatureSet.open(child))
        except VavaError as err:
            skipped[child] = str(err)
    return sets, skipped


def open_run_features(features: str | Location | None, recorded: str) -> FeatureSet:
    """The feature set a run works on: `features` when given, else the one it `recorded` training on."""
    if features is not None:
        return FeatureSet.open(features)
    try:
        return FeatureSet.open(recorded)
    except VavaError as err:
        raise VavaError(f"{err} (the feature set the run was trained on; pass {option_name('features')} if it "
                        "moved)") from None


def open_feature_sets(cache: str | Location) -> list[FeatureSet]:
    """Every (readable) feature set under a cache folder, in fingerprint order."""
    return scan_cache(cache)[0]


def disk_usage(path: Location) -> int:
    """Bytes on disk (or in object storage) of every file below `path`."""
    if isinstance(path, RemotePath):
        return sum(path.sizes().values())
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def removable_feature_set(path: str | Location) -> FeatureSet:
    """The feature set at `path` if `cache rm` may delete that folder: its real folder (not a symlink), named by
    its fingerprint and holding nothing but the set. Anything else is refused: it would delete other files."""
    path = as_location(path)
    if path.is_symlink():
        raise VavaError(f"{path}: is a symlink (to {path.readlink()}); give the feature set's real folder")
    feature_set = FeatureSet.open(path.resolve())  # its lock is found beside its real folder
    folder = feature_set.path
    if folder.name != feature_set.fingerprint:
        raise VavaError(f"{path}: its zarr.json is that of feature set {quoted(feature_set.fingerprint)}, whose folder "
                        "bears that name; this folder is not one, so nothing was removed")
    others = sorted(p.name for p in folder.iterdir() if p.name not in ("zarr.json", "videos"))
    if others or (folder / "videos").is_symlink() or not (folder / "videos").is_dir():
        found = ", ".join(map(quoted, others[:3])) + (", ..." if len(others) > 3 else "") or "videos is no folder"
        raise VavaError(f"{path}: holds more than a feature set ({found}); nothing was removed")
    return feature_set


def remove_feature_set(path: str | Location) -> None:
    """Delete a feature set and its lock folder (see `removable_feature_set`); `VavaError` while another process
    writes into it."""
    feature_set = removable_feature_set(path)
    lock = set_lock(feature_set.path, shared=False)
    if not lock.acquire(blocking=False):
        raise VavaError(f"{feature_set.path}: a running `vava extract` is writing into this feature set; "
                        "remove it once that has finished")
    try:
        if isinstance(feature_set.path, RemotePath):
            feature_set.path.remove_tree()
        else:
            shutil.rmtree(feature_set.path)
            shutil.rmtree(lock_folder(feature_set.path), ignore_errors=True)
    finally:
        lock.release()
