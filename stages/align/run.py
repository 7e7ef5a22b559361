"""Aligning two videos with a trained run's embedder, rendered side by side.

Matching works on per-frame embeddings (`vava.core.correspondence`: each frame's nearest neighbour,
or the DTW path); `retime` turns either into one frame of B per frame of A.

`align_videos` embeds two videos with a run's embedder, either cached ones (by id, features read
from the run's feature set) or new files and frame folders (decoded and passed through the backbone,
preprocessing and weights the feature set was extracted with), and writes A at its own pace beside B
re-timed to follow it, each half captioned with its video's name and frame counter, with a time bar
under each half and a legend of the phase colours (`stages.align.annotate`).
"""
from __future__ import annotations

import sys
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F
from tqdm import tqdm

from vava.cache.inputs import FeatureSettings
from vava.cache.store import CachedVideo, FeatureSet, open_run_features
from vava.core.backbone import backbone_maps, backbone_with_cut, imagenet_weights_path, load_backbone
from vava.core.correspondence import dtw_path, nearest_neighbour_path
from vava.core.decode import VideoDecoder
from vava.core.devices import resolve_device
from vava.core.embedder import embed_video
from vava.core.errors import VavaError, option_name
from vava.core.figures import phase_colours, plot_alignment
from vava.core.records import VideoRecord
from vava.core.run_folder import checkpoint_path, load_embedder
from vava.core.videoio import kept_frames, write_video
from vava.stages.align.annotate import captions, legend, strip_height

METHODS = ("dtw", "nn")
DEFAULT_HEIGHT = 240
DECODE_CHUNK = 32     # frames decoded (and passed through the backbone) at a time
EMBED_CHUNK = 256     # frames embedded at a time
DIMMED = 0.35         # brightness of the part of a time bar not played yet
NEUTRAL_COLOUR = 0.7  # time-bar grey of videos without labels


def retime(path: np.ndarray, len_a: int) -> np.ndarray:
    """(len_a,) int: the frame of B shown with each frame of A under a path of (i, j) pairs.

    A frame of A matched to several frames of B takes the middle one, so a monotone path gives a
    monotone result.
    """
    path = np.asarray(path, dtype=np.int64).reshape(-1, 2)
    first = np.full(len_a, np.iinfo(np.int64).max)
    last = np.full(len_a, -1)
    np.minimum.at(first, path[:, 0], path[:, 1])
    np.maximum.at(last, path[:, 0], path[:, 1])
    if (last < 0).any():
        raise ValueError(f"the path leaves frame {int(np.argmax(last < 0))} of A unmatched")
    return (first + last) // 2


# -- clips ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Clip:
    """One side of an alignment: per-frame embeddings and the same frames to show."""

    name: str
    embeddings: np.ndarray          # (T, D) float32
    frames: np.ndarray              # (T, h, w, 3) uint8, at the display height
    fps: float | None
    labels: np.ndarray | None = None
    phases: tuple[str, ...] = ()
    background_label: int | None = None


class _MapsInMemory:
    """One video's conv4 maps held in memory, read the way `embed_video` reads a `FeatureSet`."""

    def __init__(self, maps: np.ndarray):
        self._maps = maps

    def read(self, video_id: str, indices: slice) -> np.ndarray:
        return self._maps[indices]


def _display_frames(frames: torch.Tensor, height: int) -> np.ndarray:
    """uint8 (n, 3, H, W) -> (n, height, w, 3), w even, aspect ratio kept."""
    source_height, source_width = frames.shape[-2:]
    width = max(2, 2 * round(source_width * height / source_height / 2))
    resized = F.interpolate(frames.float(), size=(height, width), mode="bilinear", antialias=True, align_corners=False)
    return resized.round_().clamp_(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy()


def _feature_backbone(settings: FeatureSettings, weights: str | Path | None) -> nn.Module:
    """The backbone carrying the weights a feature set was extracted with, checked by identity."""
    name, identity = backbone_with_cut(settings.backbone, settings.layer), settings.weights
    option = option_name("weights")
    if identity.startswith("random:"):
        backbone, loaded = load_backbone(name, "random", int(identity.split(":")[1]))
    else:
        path = Path(weights) if weights is not None else imagenet_weights_path(name)
        if not path.is_file():
            raise VavaError(f"{option}: {path} not found; pass {option} PATH, the {name} weights file the "
                            f"features were extracted with ({identity})")
        backbone, loaded = load_backbone(name, str(path))
    if loaded != identity:
        raise VavaError(f"{option}: the {name} weights at hand ({loaded}) are not those the features were "
                        f"extracted with ({identity}); pass {option} PATH to that file")
    return backbone


def _source_record(feature_set: FeatureSet, video: CachedVideo) -> VideoRecord:
    """Where a cached video's frames are (the cache holds its features, not its pixels)."""
    if not video.source_path:
        raise VavaError(f"video {video.id!r}: cannot read the dataset the features came from ({feature_set.path} "
                        "records no source file for it); pass the video file instead of its id")
    return VideoRecord(id=video.id, path=Path(video.source_path), split=video.split, action=video.action,
                       labels=np.empty(0, dtype=np.int64), fps=video.manifest_fps, member=video.source_member)


def _decoding(record: VideoRecord, target_fps: float | None, progress: bool) -> tqdm:
    """A progress bar over the frames of `record` a decode keeps (counted from its metadata where it can be)."""
    try:
        total = kept_frames(record, target_fps) or None
    except VavaError:
        total = None
    return tqdm(total=total, unit="frame", desc=f"align: decode {record.id}", file=sys.stderr, disable=not progress,
                dynamic_ncols=True)


def _sampled_fps(source_fps: float | None, target_fps: float | None) -> float | None:
    return min(source_fps, target_fps) if source_fps and target_fps else source_fps


class TrainedRun:
    """A trained run's embedder and its feature set (by default the one it was trained on), turning
    videos into `Clip`s.

    `weights` is only used for videos given as files, when the feature set was extracted with a
    weights file (default: the torch hub's ImageNet file of the backbone). With `progress`, decoding
    (and, for files, the backbone) shows a progress bar on stderr.
    """

    def __init__(self, run_dir: str | Path, weights: str | Path | None = None, device: str = "auto",
                 height: int = DEFAULT_HEIGHT, features: str | Path | None = None, progress: bool = False):
        if not checkpoint_path(run_dir).is_file():
            raise VavaError(f"{run_dir}: no trained checkpoint; aligning needs a trained run "
                            f"(runs embedded with {option_name('identity')} are not supported)")
        self.device = resolve_device(device)
        trained = load_embedder(run_dir)
        self.feature_set = open_run_features(features, trained.features)
        trained.check_maps(self.feature_set.map_shape(), self.feature_set.path)
        self.embedder, self.model = trained.build(self.device), trained.model
        self.weights = weights
        self.progress = progress
        self.height = height + height % 2
        self.settings = self.feature_set.inputs.settings  # how the features were extracted: so are files' frames
        self.target_fps = self.settings.sampling.target_fps

    def clip(self, video: str) -> Clip:
        """A cached video by id, else a video file or frame folder by path."""
        if video in {v.id for v in self.feature_set.videos()}:
            return self._cached_clip(video)
        if Path(video).exists():
            return self._file_clip(Path(video))
        raise VavaError(f"{video}: neither a video of feature set {self.feature_set.path} "
                        "nor an existing video file or frame folder")

    @cached_property
    def backbone(self) -> nn.Module:
        return _feature_backbone(self.settings, self.weights).to(self.device)

    def _embed(self, source: FeatureSet | _MapsInMemory, video: CachedVideo) -> np.ndarray:
        return embed_video(source, video, self.embedder, self.model, EMBED_CHUNK, self.device)

    def _cached_clip(self, video_id: str) -> Clip:
        video = self.feature_set.video(video_id)
        record = _source_record(self.feature_set, video)
        decoder = VideoDecoder(record, DECODE_CHUNK, self.target_fps)
        stored = self.feature_set.frame_index(video_id)
        shown = []
        with _decoding(record, self.target_fps, self.progress) as bar:
            for chunk in decoder:
                shown.append(_display_frames(chunk.frames[torch.from_numpy(np.isin(chunk.indices, stored))],
                                             self.height))
                bar.update(len(chunk.indices))
        frames = np.concatenate(shown)
        if decoder.decoded_frames != video.decoded_frames or len(frames) != video.num_frames:
            raise VavaError(f"video {video_id!r}: {record.path} decodes to {decoder.decoded_frames} frames, "
                            f"{video.decoded_frames} when it was extracted; re-extract it or pass the file")
        return Clip(video_id, self._embed(self.feature_set, video), frames, video.fps,
                    self.feature_set.labels(video_id), video.phases, video.background_label)

    def _file_clip(self, path: Path) -> Clip:
        record = VideoRecord(id=path.name, path=path.resolve(), split="val", action="",
                             labels=np.empty(0, dtype=np.int64))
        decoder = VideoDecoder(record, DECODE_CHUNK, self.target_fps)
        # the backbone's input decoded and resized as the feature set's were (by FFmpeg for its uint8 scaler)
        inputs = VideoDecoder(record, DECODE_CHUNK, self.target_fps, self.settings.preprocessing)
        frames, maps = [], []
        with _decoding(record, self.target_fps, self.progress) as bar:
            bar.set_description(f"align: decode and embed {record.id}")
            for chunk, scaled in zip(decoder, inputs):
                frames.append(_display_frames(chunk.frames, self.height))
                maps.append(backbone_maps(self.backbone, self.settings.preprocessing(scaled.frames), self.device))
                bar.update(len(chunk.indices))
        fps = _sampled_fps(decoder.source_fps, self.target_fps)
        video = CachedVideo(id=record.id, split="", action="", num_frames=sum(len(m) for m in maps),
                            decoded_frames=decoder.decoded_frames, fps=fps, phases=(), background_label=None,
                            complete=True)
        return Clip(record.id, self._embed(_MapsInMemory(np.concatenate(maps)), video), np.concatenate(frames), fps)


# -- rendering -----------------------------------------------------------------------------
def _bar_height(height: int) -> int:
    return 2 * max(2, height // 48)


def _timeline_colours(clip: Clip) -> np.ndarray:
    """(T, 3) RGB in [0, 1] of each frame: its phase colour, or neutral grey without labels."""
    if clip.labels is None:
        return np.full((len(clip.frames), 3), NEUTRAL_COLOUR)
    return phase_colours(clip.labels, clip.background_label)


def time_bars(positions: np.ndarray, colours: np.ndarray, width: int, height: int) -> np.ndarray:
    """(N, height, width, 3) uint8: a video's timeline (`colours`, one per frame), bright up to the
    frame shown (`positions`, one per output frame) and dimmed after it, with a white marker there."""
    length = len(colours)
    frame_of_column = np.minimum((np.arange(width) + 0.5) * length / width, length - 1).astype(np.int64)
    strip = np.round(colours[frame_of_column] * 255).astype(np.uint8)            # (width, 3)
    played = frame_of_column[None, :] <= positions[:, None]                      # (N, width)
    bars = np.where(played[..., None], strip, np.round(strip * DIMMED).astype(np.uint8))
    marker = np.minimum(positions * width // length, width - 1)
    bars[np.arange(len(positions)), marker] = 255
    return np.repeat(bars[:, None], height, axis=1)


def compose(a: Clip, b: Clip, shown: np.ndarray) -> np.ndarray:
    """(Ta, line + h + bar [+ legend], wa + wb, 3) uint8: A's frames beside B's frames `shown[t]`, a caption
    above each (the video's name and the frame shown of its frames), time bars below, and under them a
    legend of the phase colours when either video has labels."""
    bar, line = _bar_height(a.frames.shape[1]), strip_height(a.frames.shape[1])
    frame = np.arange(len(a.frames))
    caption = np.concatenate([
        captions([f"A: {a.name} {t + 1}/{len(a.frames)}" for t in frame], a.frames.shape[2], line),
        captions([f"B: {b.name} {t + 1}/{len(b.frames)}" for t in shown], b.frames.shape[2],
                 line)], axis=2)
    top = np.concatenate([a.frames, b.frames[shown]], axis=2)
    bars = np.concatenate([time_bars(frame, _timeline_colours(a), a.frames.shape[2], bar),
                           time_bars(shown, _timeline_colours(b), b.frames.shape[2], bar)], axis=2)
    parts = [caption, top, bars]
    labelled = [clip for clip in (a, b) if clip.labels is not None]
    if labelled:
        key = legend(np.concatenate([clip.labels for clip in labelled]), labelled[0].phases,
                     labelled[0].background_label, top.shape[2], line)
        parts.append(np.broadcast_to(key, (len(frame), *key.shape)))
    return np.concatenate(parts, axis=1)


def align_videos(run_dir: str | Path, video_a: str, video_b: str, out_mp4: str | Path, method: str = "dtw",
                 plot_png: str | Path | None = None, fps: float | None = None, height: int = DEFAULT_HEIGHT,
                 weights: str | Path | None = None, device: str = "auto", features: str | Path | None = None,
                 progress: bool = False) -> Path:
    """Write `out_mp4`: A at its own pace beside B re-timed to follow it (matches by `method`).

    Videos are ids of the run's feature set (`features`, default: the one it was trained on) or
    paths of video files / frame folders. The output plays at `fps` (default: A's frame rate), both
    halves `height` pixels high (rounded up to even). With `plot_png`, the alignment plot is written
    too. With `progress`, decoding each video shows a progress bar on stderr. Returns the path of the video.
    """
    for key, path, suffix in (("out", out_mp4, ".mp4"), ("plot", plot_png, ".png")):
        if path is not None and Path(path).suffix.lower() != suffix:
            raise VavaError(f"{option_name(key)}: {path} must end in {suffix}")
    if method not in METHODS:
        raise VavaError(f"{option_name('method')}: {method!r} is not one of {', '.join(METHODS)}")
    if height < 2:
        raise VavaError(f"{option_name('height')}: must be at least 2, got {height}")
    if fps is not None and not fps > 0:
        raise VavaError(f"{option_name('fps')}: must be positive, got {fps}")
    run = TrainedRun(run_dir, weights, device, height, features, progress)
    a, b = run.clip(video_a), run.clip(video_b)
    out_fps = fps or a.fps
    if not out_fps:
        raise VavaError(f"{video_a}: frame rate unknown (a frame folder?); pass {option_name('fps')}")
    matches = nearest_neighbour_path(a.embeddings, b.embeddings)
    if method == "dtw":
        path = dtw_path(a.embeddings, b.embeddings)
    else:
        path = np.column_stack([np.arange(len(matches)), matches])
    out_mp4 = Path(out_mp4)
    out_mp4.parent.mkdir(parents=True, exist_ok=True)
    write_video(out_mp4, compose(a, b, retime(path, len(a.embeddings))), out_fps)
    if plot_png is not None:
        plot_alignment(a.embeddings, b.embeddings, plot_png, a.labels, b.labels,
                       path=path if method == "dtw" else None, matches=matches, phases=a.phases or b.phases,
                       background_label=a.background_label, names=(a.name, b.name))
    return out_mp4
