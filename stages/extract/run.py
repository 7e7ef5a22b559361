"""Stage 1: decode videos, run the frozen backbone, write conv4 maps into the feature cache.

Three kinds of threads overlap the work: decode workers (decode + preprocess, one video each at a
time; threads, as PyAV and FFmpeg release the GIL: processes measured slower, bench/bench_decode.py)
feed a bounded queue; the calling thread fills fixed-size batches with frames from several videos
and runs the backbone; a writer thread appends the results to the zarr store and marks each
video complete. Per-video file locks let several processes share one cache; under `torchrun` the
ranks split the videos between them (`vava.stages.extract.shards`).
"""
from __future__ import annotations

import contextlib
import os
import queue
import sys
import threading
import time
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch
from tqdm import tqdm

from vava.cache.fingerprint import feature_set_fingerprint, source_identity
from vava.cache.inputs import FeatureSettings, Sampling
from vava.cache.inspect import drop_damaged
from vava.cache.locks import FileLock, video_lock
from vava.cache.store import FEATURE_DTYPE, FeatureSet, VideoWriter
from vava.core.backbone import BACKBONES, backbone_maps, load_backbone
from vava.core.decode import VideoDecoder
from vava.core.devices import resolve_device
from vava.core.distributed import (
    SHARE_WAIT_S,
    all_gather_json,
    broadcast_json,
    current_ranks,
    local_device,
    process_group,
)
from vava.core.errors import VavaError, option_name
from vava.core.location import RemotePath, as_location
from vava.core.preprocess import DECODERS, RESIZE_MODES, SCALERS, Preprocessing
from vava.core.records import UNKNOWN_LABEL, VideoRecord, check_video_id
from vava.core.torchcodec_decode import torchcodec_problem
from vava.core.validation import (
    FLAG,
    TEXT,
    Rule,
    at_least,
    checked,
    integer,
    invalid,
    number,
    one_of,
    optional,
    validate,
)
from vava.core.videoio import planned_frames
from vava.stages.extract.shards import plan_shards

LENGTH_MISMATCH_MODES = ("error", "truncate")
BACKBONE = Rule(lambda name: name in BACKBONES, "a known backbone",
                lambda name: f"unknown backbone {name!r} (known: {', '.join(sorted(BACKBONES))})")


@dataclass(frozen=True)
class ExtractOptions:
    """Everything `extract` can be told; the fields that change features enter the fingerprint."""

    KEYS_ARE_OPTIONS: ClassVar[bool] = True  # errors name the keys as options (the CLI's --image-size, --fps)

    backbone: str = checked(BACKBONE, "resnet50")
    weights: str = checked(TEXT, "imagenet")
    seed: int = checked(integer(), 0)
    image_size: int = checked(integer(), 224)  # a positive multiple of the backbone's stride (checked below)
    resize: str = checked(one_of(*RESIZE_MODES), "stretch")
    scaler: str = checked(one_of(*SCALERS), "uint8")  # float: the path of sets extracted before the choice
    decoder: str = checked(one_of(*DECODERS), "pyav")
    target_fps: float | None = checked(optional(number(above=0), "a positive finite number"), None)
    on_length_mismatch: str = checked(one_of(*LENGTH_MISMATCH_MODES), "error")
    batch_size: int = checked(at_least(1), 32)
    device: str = checked(TEXT, "auto")
    workers: int = checked(at_least(1), 2)
    chunk_frames: int = checked(at_least(1), 16)
    progress: bool = checked(FLAG, True)
    repair: bool = checked(FLAG, False)  # read every cached video in full; damaged ones are extracted again

    @property
    def map_shape(self) -> tuple[int, int, int]:
        """(channels, side, side) of each cached frame's maps."""
        spec = BACKBONES[self.backbone]
        side = self.image_size // spec.stride
        return spec.channels, side, side

    def validate(self) -> None:
        """Raise a ConfigError for the first option that breaks its rule."""
        validate(self)
        stride = BACKBONES[self.backbone].stride
        if self.image_size <= 0 or self.image_size % stride:
            raise invalid(self, "image_size", f"{self.image_size} is not a positive multiple of {stride}")
        if self.decoder == "torchcodec" and (problem := torchcodec_problem()):
            raise invalid(self, "decoder", problem)


@dataclass
class ExtractSummary:
    """What one `extract` call did, video by video."""

    path: Path | RemotePath
    fingerprint: str
    extracted: list[str] = field(default_factory=list)
    cached: list[str] = field(default_factory=list)
    by_others: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    damaged: dict[str, str] = field(default_factory=dict)  # found damaged, so extracted again
    frames: int = 0
    seconds: float = 0.0  # spent decoding, embedding and writing (start-up not included)
    # of `seconds`, what the backbone thread spent waiting for decoded frames and running the backbone:
    # the larger of the two says whether decoding or the backbone bounds the extraction
    waiting_s: float = 0.0
    backbone_s: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.failed

    def to_json(self) -> dict:
        return {**asdict(self), "path": str(self.path)}

    @classmethod
    def from_json(cls, value: dict) -> ExtractSummary:
        return cls(**{**value, "path": as_location(value["path"])})

    @classmethod
    def merged(cls, parts: Iterable[ExtractSummary]) -> ExtractSummary:
        """One summary of the ranks' `parts`, which ran side by side: the times are the slowest rank's, the one
        that bounded the job."""
        parts = list(parts)
        slowest = max(parts, key=lambda part: part.seconds)
        whole = cls(path=parts[0].path, fingerprint=parts[0].fingerprint, seconds=slowest.seconds,
                    waiting_s=slowest.waiting_s, backbone_s=slowest.backbone_s)
        for part in parts:
            for name in ("extracted", "cached", "by_others"):
                getattr(whole, name).extend(getattr(part, name))
            whole.failed.update(part.failed)
            whole.damaged.update(part.damaged)
            whole.frames += part.frames
        return whole

    def account_for(self, video_ids: list[str]) -> None:
        """Leave each of `video_ids` in exactly one outcome: a failure overrides any other outcome,
        and a video with none becomes a failure, so an internal error never loses a video silently."""
        placed = set(self.failed)
        for outcome in (self.extracted, self.cached, self.by_others):
            outcome[:] = [video_id for video_id in dict.fromkeys(outcome) if video_id not in placed]
            placed.update(outcome)
        for video_id in video_ids:
            if video_id not in placed:
                self.failed[video_id] = (f"video {video_id!r}: neither extracted nor failed (an internal error "
                                         "lost track of it); rerun `vava extract`")


def feature_settings(options: ExtractOptions, weights_identity: str) -> FeatureSettings:
    """The extraction choices that determine the features (fingerprint inputs beside the videos).

    `layer` is the backbone's cut (`layer3.2`, `layer3`), so two cuts of one network never share a feature set.
    """
    return FeatureSettings(backbone=options.backbone, layer=BACKBONES[options.backbone].cut, weights=weights_identity,
                           preprocessing=Preprocessing(options.image_size, options.resize, scaler=options.scaler,
                                                       decoder=options.decoder),
                           sampling=Sampling(options.target_fps), on_length_mismatch=options.on_length_mismatch,
                           dtype=FEATURE_DTYPE)


def extract(records: list[VideoRecord], cache: str | Path | RemotePath, options: ExtractOptions,
            dataset: dict | None = None) -> ExtractSummary:
    """Extract every video of `records` into its feature set under `cache`; return the summary.

    Videos already complete are skipped unless damaged (missing or resized files; with
    `options.repair`, any byte that fails its checksum); a video that fails is reported and left
    out while the others go on; every video of `records` ends up in exactly one outcome of the
    summary. The feature set path is `cache/<fingerprint>`. Backbone output that is not finite stops
    the extraction (`VavaError` naming the weights); videos finished before are kept.

    Under `torchrun` every rank calls this with the same arguments: rank 0 checks the cache and splits
    the pending videos between the ranks by frame count, each rank extracts its share into the same
    feature set, and every rank returns the summary of the whole job (only rank 0 shows progress).
    """
    options.validate()
    for record in records:
        check_video_id(record.id, "extract")
    device = local_device(resolve_device(options.device), current_ranks())
    backbone, weights_identity = load_backbone(options.backbone, options.weights, options.seed)
    settings = feature_settings(options, weights_identity)
    fingerprint, inputs, members = feature_set_fingerprint(records, settings)
    path = as_location(cache) / fingerprint
    with process_group(device, timeout_s=SHARE_WAIT_S) as ranks:
        plan = None
        if ranks.is_main:  # the others wait for its plan, so no two ranks check (or repair) the same video
            feature_set = FeatureSet.create(path, fingerprint, inputs, {"dataset": dataset or {}}, members)
            damaged = drop_damaged(feature_set, [r.id for r in records], full=options.repair)
            pending = [record for record in records if not feature_set.is_complete(record.id)]
            waiting = {record.id for record in pending}
            plan = {"damaged": damaged, "cached": [r.id for r in records if r.id not in waiting],
                    "shards": plan_shards(pending, ranks.world, options.target_fps)}
        plan = broadcast_json(plan)
        if not ranks.is_main:
            feature_set = FeatureSet.open(path)
            options = replace(options, progress=False)
        summary = ExtractSummary(path=feature_set.path, fingerprint=fingerprint, cached=plan["cached"],
                                 damaged=plan["damaged"] if ranks.is_main else {})
        mine = set(plan["shards"][ranks.rank])
        _extract_pending(feature_set, [r for r in records if r.id in mine], backbone, settings, options, device,
                         summary)
        summary = ExtractSummary.merged(map(ExtractSummary.from_json, all_gather_json(summary.to_json())))
    summary.account_for([record.id for record in records])
    return summary


def _extract_pending(feature_set: FeatureSet, pending: list[VideoRecord], backbone: torch.nn.Module,
                     settings: FeatureSettings, options: ExtractOptions, device: torch.device,
                     summary: ExtractSummary) -> None:
    """Extract `pending` into `feature_set`, recording each outcome and the time spent in `summary`."""
    start = time.perf_counter()
    if pending:
        backbone = backbone.to(device)
        if device.type == "cuda":
            backbone = backbone.to(memory_format=torch.channels_last)
        run = _ExtractionRun(feature_set, backbone, settings.preprocessing, options, device, options.map_shape,
                             summary)
        with feature_set.writing(), _naming_unrepaired(summary):
            deferred = run.run(pending, blocking=False)
            if deferred:  # held by another process: wait for it, then take over whatever it left undone
                run.run(deferred, blocking=True)
    summary.seconds = time.perf_counter() - start


@contextlib.contextmanager
def _naming_unrepaired(summary: ExtractSummary) -> Iterator[None]:
    """A `VavaError` that stops the extraction also names the damaged videos it left unrepaired."""
    try:
        yield
    except VavaError as err:
        left = [video_id for video_id in summary.damaged if video_id not in summary.extracted]
        if not left:
            raise
        shown = ", ".join(map(repr, left[:3])) + (f" and {len(left) - 3} more" if len(left) > 3 else "")
        raise VavaError(f"{err}; not repaired: {shown} (found damaged, not extracted again)") from None


# Messages passed between the threads. `job` carries one video through the pipeline.
@dataclass
class _VideoJob:
    record: VideoRecord
    lock: FileLock
    writer: VideoWriter | None = None
    indices: list[np.ndarray] = field(default_factory=list)
    failed: bool = False  # set by the writer: later messages of this job are dropped


@dataclass
class _Frames:
    job: _VideoJob
    data: torch.Tensor | np.ndarray
    indices: np.ndarray

    def __len__(self) -> int:
        return int(self.indices.shape[0])


@dataclass
class _End:
    job: _VideoJob
    decoded_frames: int
    fps: float | None


@dataclass
class _Failed:
    job: _VideoJob
    reason: str


def _lower_priority() -> None:
    """Run the calling thread at a lower priority (Linux niceness is per thread), so decoding and
    writing take only the CPU time the backbone leaves and never slow it down on a busy machine."""
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), os.getpriority(os.PRIO_PROCESS, 0) + 10)
    except (AttributeError, OSError):  # not Linux, or not permitted: run at the normal priority
        pass


_WORKER_DONE = object()
_WRITER_STOP = object()


class _ExtractionRun:
    def __init__(self, feature_set: FeatureSet, backbone: torch.nn.Module, preprocessing: Preprocessing,
                 options: ExtractOptions, device: torch.device, frame_shape: tuple[int, int, int],
                 summary: ExtractSummary):
        self.feature_set = feature_set
        self.backbone = backbone
        self.preprocessing = preprocessing
        self.options = options
        self.device = device
        self.frame_shape = frame_shape
        self.summary = summary
        self._stop = threading.Event()
        self._summary_lock = threading.Lock()

    def run(self, records: list[VideoRecord], blocking: bool) -> list[VideoRecord]:
        """Extract `records`; return those another process held (only when not `blocking`)."""
        todo: queue.Queue[VideoRecord] = queue.Queue()
        for record in records:
            todo.put(record)
        deferred: list[VideoRecord] = []
        workers = min(self.options.workers, len(records))
        frames_q: queue.Queue = queue.Queue(maxsize=4 * workers)
        write_q: queue.Queue = queue.Queue(maxsize=8)
        # the frames to cache, counted from the videos' metadata as --dry-run counts them: a total and an ETA
        total = planned_frames(records, self.options.target_fps) if self.options.progress else None
        bar = tqdm(total=total or None, unit="frame", desc="extract", file=sys.stderr,
                   disable=not self.options.progress, dynamic_ncols=True)
        threads = [threading.Thread(target=self._decode_worker, args=(todo, frames_q, deferred, blocking), daemon=True)
                   for _ in range(workers)]
        writer = threading.Thread(target=self._write_loop, args=(write_q,), daemon=True)
        for thread in (*threads, writer):
            thread.start()
        try:
            self._compute_loop(frames_q, write_q, workers, bar)
        except BaseException:
            self._stop.set()
            raise
        finally:
            write_q.put(_WRITER_STOP)
            writer.join()
            for thread in threads:
                thread.join(timeout=5)
            bar.close()
        return deferred

    # -- decode workers ------------------------------------------------------------------
    def _decode_worker(self, todo: queue.Queue, frames_q: queue.Queue, deferred: list, blocking: bool) -> None:
        _lower_priority()
        try:
            while not self._stop.is_set():
                try:
                    record = todo.get_nowait()
                except queue.Empty:
                    break
                try:
                    self._decode_video(record, frames_q, deferred, blocking)
                except Exception as err:  # an error before decoding started costs this video, not the thread
                    self._record_failure(record.id, f"video {record.id!r}: {type(err).__name__}: {err}")
        finally:
            self._put(frames_q, _WORKER_DONE)

    def _decode_video(self, record: VideoRecord, frames_q: queue.Queue, deferred: list, blocking: bool) -> None:
        lock = video_lock(self.feature_set.path, record.id)
        try:
            if not lock.acquire(blocking=blocking):
                deferred.append(record)
                return
        except OSError as err:
            self._record_failure(record.id, f"video {record.id!r}: cannot lock {lock.path} ({err.strerror})")
            return
        try:
            finished_elsewhere = self.feature_set.is_complete(record.id)
        except BaseException:
            lock.release()
            raise
        if finished_elsewhere:  # by another process, meanwhile
            lock.release()
            with self._summary_lock:
                self.summary.by_others.append(record.id)
            return
        job = _VideoJob(record, lock)
        decoder = VideoDecoder(record, self.options.chunk_frames, self.options.target_fps, self.preprocessing)
        try:
            for chunk in decoder:
                self._put(frames_q, _Frames(job, self.preprocessing(chunk.frames), chunk.indices))
            self._put(frames_q, _End(job, decoder.decoded_frames, decoder.source_fps))
        except VavaError as err:
            self._put(frames_q, _Failed(job, str(err)))
        except Exception as err:  # a decoder bug must not take the other videos down
            self._put(frames_q, _Failed(job, f"video {record.id!r}: {type(err).__name__}: {err}"))

    def _put(self, q: queue.Queue, item: object) -> None:
        while not self._stop.is_set():
            try:
                q.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    # -- backbone (calling thread) -------------------------------------------------------
    def _compute_loop(self, frames_q: queue.Queue, write_q: queue.Queue, workers: int, bar: tqdm) -> None:
        pending: deque = deque()  # frames and end/failure messages, in arrival order
        pending_frames = 0
        finished_workers = 0
        batch = self.options.batch_size
        while finished_workers < workers or pending:
            if finished_workers < workers:
                waited = time.perf_counter()
                item = frames_q.get()
                self.summary.waiting_s += time.perf_counter() - waited
                if item is _WORKER_DONE:
                    finished_workers += 1
                else:
                    pending.append(item)
                    pending_frames += len(item) if isinstance(item, _Frames) else 0
            flush = finished_workers == workers
            while pending_frames >= batch or (flush and pending_frames):
                segments = self._take(pending, min(batch, pending_frames))
                pending_frames -= sum(len(s) for s in segments)
                for segment in self._embed(segments):
                    write_q.put(segment)
                bar.update(sum(len(s) for s in segments))
            while pending and not isinstance(pending[0], _Frames):
                write_q.put(pending.popleft())

    @staticmethod
    def _take(pending: deque, count: int) -> list[_Frames]:
        """Pop exactly `count` frames from the front of `pending`, splitting a chunk if needed.

        End/failure messages met on the way are kept in place, so each still follows its frames.
        """
        segments: list[_Frames] = []
        held: list[object] = []
        while count:
            item = pending.popleft()
            if not isinstance(item, _Frames):
                held.append(item)
                continue
            if len(item) > count:
                head = _Frames(item.job, item.data[:count], item.indices[:count])
                pending.appendleft(_Frames(item.job, item.data[count:], item.indices[count:]))
                item = head
            segments.append(item)
            count -= len(item)
        pending.extendleft(reversed(held))
        return segments

    def _embed(self, segments: list[_Frames]) -> list[_Frames]:
        images = torch.cat([s.data for s in segments])
        count, batch = len(images), self.options.batch_size
        if count < batch:
            # A frame's maps depend on the size of its batch (the kernels' blocking), not on the other frames in
            # it: padded to one size, the maps are the same however the videos are split between runs and ranks.
            images = torch.cat([images, images.new_zeros((batch - count, *images.shape[1:]))])
        began = time.perf_counter()
        try:
            maps = backbone_maps(self.backbone, images, self.device)[:count]  # returns on the host: the GPU is done
        except torch.OutOfMemoryError:
            raise VavaError(f"{option_name('batch_size')}: {batch} frames do not fit in {self.device} memory; "
                            "use a smaller batch (videos finished so far are kept)") from None
        self.summary.backbone_s += time.perf_counter() - began
        bounds = np.cumsum([0] + [len(s) for s in segments])
        bad = ~np.isfinite(maps).reshape(len(maps), -1).all(axis=1)  # cheap beside the backbone
        if bad.any():  # stored, such maps would fail every later check (and --repair would store them again)
            first = segments[np.searchsorted(bounds, np.argmax(bad), side="right") - 1]
            raise VavaError(f"{option_name('weights')} {self.options.weights}: the {self.options.backbone} backbone "
                            f"gives NaN or infinite features (first in video {first.job.record.id!r}); the weights "
                            "are damaged or not for this backbone (videos finished so far are kept)")
        return [_Frames(s.job, maps[a:b], s.indices) for s, a, b in zip(segments, bounds[:-1], bounds[1:])]

    # -- writer thread -------------------------------------------------------------------
    def _write_loop(self, write_q: queue.Queue) -> None:
        _lower_priority()
        while (item := write_q.get()) is not _WRITER_STOP:
            job = item.job
            if job.failed:
                continue
            try:
                if isinstance(item, _Frames):
                    if job.writer is None:
                        job.writer = self.feature_set.begin_video(job.record.id, self.frame_shape, self._attrs(job.record))
                    job.writer.append(item.data)
                    job.indices.append(item.indices)
                elif isinstance(item, _End):
                    self._finish(job, item)
                else:
                    raise VavaError(item.reason)
            except Exception as err:
                reason = str(err) if isinstance(err, VavaError) else f"video {job.record.id!r}: cannot write to cache ({err})"
                self._fail(job, reason)

    def _attrs(self, record: VideoRecord) -> dict:
        attrs = {"split": record.split, "action": record.action, "phases": list(record.phases),
                 "background_label": record.background_label, "source": source_identity(record.path),
                 "source_path": str(record.path), "manifest_fps": record.fps}
        if record.member is not None:
            attrs["source_member"] = record.member
        return attrs

    def _finish(self, job: _VideoJob, end: _End) -> None:
        record = job.record
        labels = record.labels
        if labels is None:  # unlabelled: every decoded frame, label unknown
            labels = np.full(end.decoded_frames, UNKNOWN_LABEL, dtype=np.int64)
        if end.decoded_frames != labels.shape[0]:
            difference = end.decoded_frames - labels.shape[0]
            if self.options.on_length_mismatch == "error":
                raise VavaError(
                    f"video {record.id!r}: {labels.shape[0]} labels but {end.decoded_frames} decoded frames "
                    f"({difference:+d} frames); fix the manifest or pass {option_name('on_length_mismatch')} "
                    "truncate")
        indices = np.concatenate(job.indices)
        indices = indices[indices < labels.shape[0]]
        target = self.options.target_fps
        fps = min(end.fps, target) if end.fps and target else end.fps
        flags = None if record.flags is None else record.flags[indices]
        job.writer.finish(labels[indices], indices, {"decoded_frames": end.decoded_frames, "fps": fps}, flags)
        job.lock.release()
        with self._summary_lock:
            self.summary.extracted.append(record.id)
            self.summary.frames += int(indices.shape[0])

    def _fail(self, job: _VideoJob, reason: str) -> None:
        """Drop the job's partial data and report it; never raises, so the writer thread lives on."""
        job.failed = True
        try:
            self.feature_set.remove_video(job.record.id)
        except Exception as err:
            reason += f" (its partial data could not be removed: {err}; `vava cache verify` lists it as incomplete)"
        job.lock.release()
        self._record_failure(job.record.id, reason)

    def _record_failure(self, video_id: str, reason: str) -> None:
        with self._summary_lock:
            self.summary.failed[video_id] = reason
