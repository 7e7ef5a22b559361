"""Decoding videos (PyAV, or torchcodec), frame folders and JPEG frames stored in TFRecord shards (Pillow)
into chunks of RGB frames, resized there when the preprocessing scales 8-bit frames.

Frame folders use Pillow rather than torchvision.io, whose image decoding is deprecated since
torchvision 0.29.
"""
from __future__ import annotations

import io
import re
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from vava.core.errors import VavaError
from vava.core.files import check_confined
from vava.core.preprocess import Preprocessing
from vava.core.records import VideoRecord
from vava.core.tfrecord import parse_sequence_example, read_record
from vava.core.torchcodec_decode import open_torchcodec

FRAME_EXTENSIONS = (".jpg", ".jpeg", ".png")
FRAMES_FEATURE = "video"  # the SequenceExample feature list holding one encoded image per frame


@dataclass(frozen=True)
class FrameChunk:
    """Consecutive kept frames of one video: uint8 (n, 3, H, W) and their decoded-frame indices."""

    frames: torch.Tensor
    indices: np.ndarray


def is_kept(index: int, source_fps: float | None, target_fps: float | None) -> bool:
    """Whether decoded frame `index` survives resampling `source_fps` to `target_fps`.

    Frame i is kept when floor(i * target / source) moves on, so kept frames are evenly spread and
    the first frame is always kept. Without a target (or when it is not lower), every frame is kept.
    """
    return bool(_kept(np.float64(index), source_fps, target_fps))


def kept_mask(frames: int, source_fps: float | None, target_fps: float | None) -> np.ndarray:
    """`is_kept` for decoded frames 0..frames-1 at once (bool)."""
    return _kept(np.arange(frames, dtype=np.float64), source_fps, target_fps)


def wanted_mask(record: VideoRecord, frames: int, source_fps: float | None, target_fps: float | None) -> np.ndarray:
    """Which of `record`'s decoded frames 0..frames-1 a decode keeps (bool): `kept_mask` and the record's `keep`
    mask (frames past the mask are kept)."""
    wanted = kept_mask(frames, source_fps, target_fps)
    if record.keep is not None:
        wanted[: record.keep.shape[0]] &= record.keep[:frames]
    return wanted


def _kept(index: np.ndarray, source_fps: float | None, target_fps: float | None) -> np.ndarray:
    if target_fps is None or source_fps is None or target_fps >= source_fps:
        return np.ones(index.shape, dtype=bool)
    ratio = target_fps / source_fps
    return np.floor(index * ratio) > np.floor((index - 1) * ratio)


def natural_key(name: str) -> list:
    """Sort key that puts frame2 before frame10."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


def frame_files(folder: Path) -> list[Path]:
    files = [p for p in folder.iterdir() if p.suffix.lower() in FRAME_EXTENSIONS and p.is_file()]
    return sorted(files, key=lambda p: natural_key(p.name))


class VideoDecoder:
    """Iterates a video's kept frames in chunks; `decoded_frames` is the total once exhausted.

    With `preprocessing`, video files are decoded by its `decoder`, and when it scales 8-bit frames
    (`scaler` uint8) every chunk comes out resized and cropped to its image size: by FFmpeg once it
    has converted a video frame to RGB, by torchvision's uint8 kernel for images. Otherwise frames
    keep their decoded size.
    """

    def __init__(self, record: VideoRecord, chunk_frames: int = 16, target_fps: float | None = None,
                 preprocessing: Preprocessing | None = None):
        self.record = record
        self.chunk_frames = chunk_frames
        self.target_fps = target_fps
        self.decoded_frames = 0
        self.source_fps: float | None = record.fps
        self.preprocessing = preprocessing
        self._scaling = preprocessing is not None and preprocessing.scales_uint8

    def __iter__(self) -> Iterator[FrameChunk]:
        path = self.record.path
        is_folder = self._check_source()
        if self.record.member is not None:
            source = self._frames_from_record()
        elif is_folder:
            source = self._frames_from_folder()
        elif self.preprocessing is not None and self.preprocessing.decoder == "torchcodec":
            source = self._frames_from_torchcodec()
        else:
            source = self._frames_from_file()
        yield from self._chunked(source)
        if self.decoded_frames == 0:
            raise VavaError(f"video {self.record.id!r}: no frames could be decoded from {path}")

    def _check_source(self) -> bool:
        """Whether the video is a frame folder; refuse a missing path, a FIFO or device (which would
        block or never end), and a path leading outside the record's `confined_to` folder."""
        path, video = self.record.path, f"video {self.record.id!r}"
        try:
            mode = path.stat().st_mode
        except FileNotFoundError:
            raise VavaError(f"{video}: file not found: {path}") from None
        except OSError as err:
            raise VavaError(f"{video}: cannot read {path} ({err.strerror})") from None
        if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
            raise VavaError(f"{video}: {path} is not a regular file or a folder of frames "
                            "(FIFOs and devices are not read)")
        self._check_confined(path)
        return stat.S_ISDIR(mode)

    def _check_confined(self, path: Path) -> None:
        check_confined(path, self.record.confined_to, f"video {self.record.id!r}: {path}")

    def _chunked(self, source: Iterator[tuple[int, object]]) -> Iterator[FrameChunk]:
        frames: list[torch.Tensor] = []
        indices: list[int] = []
        for index, frame in source:
            frames.append(self._to_tensor(frame))
            indices.append(index)
            if len(frames) == self.chunk_frames:
                yield self._stack(frames, indices)
                frames, indices = [], []
        if frames:
            yield self._stack(frames, indices)

    def _stack(self, frames: list[torch.Tensor], indices: list[int]) -> FrameChunk:
        shapes = {tuple(f.shape) for f in frames}
        if len(shapes) > 1:
            raise VavaError(f"video {self.record.id!r}: frames change size within the video ({sorted(shapes)})")
        stacked = torch.stack(frames)
        if self._scaling:
            stacked = self.preprocessing.scale(stacked)
        return FrameChunk(stacked, np.asarray(indices, dtype=np.int64))

    def _to_tensor(self, frame: object) -> torch.Tensor:
        if isinstance(frame, torch.Tensor):
            return frame
        if not self._scaling:
            return torch.from_numpy(frame.to_ndarray(format="rgb24")).permute(2, 0, 1)
        # Converted to RGB at full size first, as the float path does: resizing the YUV planes in the same pass
        # is 3x faster, but it averages colours before their conversion clips them, and moved saturated edges
        # by up to 70 8-bit steps. Planar RGB (gbrp) is what swscale resizes fast; `to_ndarray` gives it as RGB.
        height, width = self.preprocessing.resized_size(frame.height, frame.width)
        pixels = frame.reformat(format="gbrp").to_ndarray(width=width, height=height, interpolation="BILINEAR")
        return torch.from_numpy(pixels).permute(2, 0, 1)

    def _frames_from_file(self) -> Iterator[tuple[int, object]]:
        path = self.record.path
        try:
            with av.open(str(path)) as container:
                if not container.streams.video:
                    raise VavaError(f"video {self.record.id!r}: {path} has no video stream")
                stream = container.streams.video[0]
                stream.thread_type = "AUTO"
                if stream.average_rate:
                    self.source_fps = float(stream.average_rate)
                source_fps = self.source_fps
                self._check_fps(source_fps)
                for frame in container.decode(stream):
                    index = self.decoded_frames
                    self.decoded_frames += 1
                    if self._wanted(index, source_fps):
                        yield index, frame
        except av.FFmpegError as err:
            raise VavaError(f"video {self.record.id!r}: cannot decode {path} ({err.strerror or err})") from None

    def _frames_from_torchcodec(self) -> Iterator[tuple[int, object]]:
        """The kept frames of a video file, decoded by torchcodec (resized there when scaling 8-bit frames)."""
        size = self.preprocessing.resized_size if self._scaling else None
        video = open_torchcodec(self.record.path, size, f"video {self.record.id!r}")
        if video.fps:
            self.source_fps = video.fps
        self._check_fps(self.source_fps)
        wanted = np.flatnonzero(wanted_mask(self.record, video.frames, self.source_fps, self.target_fps))
        for start in range(0, wanted.shape[0], self.chunk_frames):
            batch = wanted[start:start + self.chunk_frames]
            yield from zip(batch.tolist(), video.frames_at(batch.tolist()))
        self.decoded_frames = video.frames

    def _frames_from_folder(self) -> Iterator[tuple[int, object]]:
        files = frame_files(self.record.path)
        self._check_fps(self.record.fps)
        for index, file in enumerate(files):
            self._check_confined(file)
            self.decoded_frames += 1
            if self._wanted(index, self.record.fps):
                yield index, self._decode_image(file, f"frame {file}")

    def _frames_from_record(self) -> Iterator[tuple[int, object]]:
        """The frames of the SequenceExample at byte `member` of the TFRecord file `path`."""
        where = f"{self.record.path}: record at byte {self.record.member}"
        example = parse_sequence_example(read_record(self.record.path, self.record.member), where,
                                         feature_lists=(FRAMES_FEATURE,))
        images = example.feature_lists.get(FRAMES_FEATURE)
        if images is None:
            raise VavaError(f"video {self.record.id!r}: {where} has no {FRAMES_FEATURE!r} feature list")
        self._check_fps(self.record.fps)
        for index, image in enumerate(images):
            self.decoded_frames += 1
            if not self._wanted(index, self.record.fps):
                continue
            if not isinstance(image, list) or len(image) != 1:
                raise VavaError(f"video {self.record.id!r}: {where}: frame {index} is not one encoded image")
            yield index, self._decode_image(io.BytesIO(image[0]), f"frame {index} of {where}")

    def _decode_image(self, source: Path | io.BytesIO, what: str) -> torch.Tensor:
        """An image file or bytes (JPEG, PNG) as a uint8 (3, H, W) RGB tensor."""
        try:
            with Image.open(source) as image:
                pixels = np.array(image.convert("RGB"))
        except (OSError, UnidentifiedImageError) as err:
            raise VavaError(f"video {self.record.id!r}: cannot decode {what} ({err})") from None
        return torch.from_numpy(pixels).permute(2, 0, 1)

    def _wanted(self, index: int, source_fps: float | None) -> bool:
        """Whether decoded frame `index` is kept: by the frame-rate resampling and the record's `keep` mask
        (frames past the mask are kept here; the label-count check deals with them)."""
        keep = self.record.keep
        in_mask = keep is None or index >= keep.shape[0] or bool(keep[index])
        return in_mask and is_kept(index, source_fps, self.target_fps)

    def _check_fps(self, source_fps: float | None) -> None:
        if self.target_fps is not None and not source_fps:
            raise VavaError(f"video {self.record.id!r}: frame rate unknown, cannot resample to {self.target_fps} fps "
                            "(give `fps` in the manifest)")
