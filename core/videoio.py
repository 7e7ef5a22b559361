"""Encoding frames to H.264 video files, and reading a video's length and frame rate, and from them the
frames a decode keeps, without decoding (decoding lives in `vava.core.decode`)."""
from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from vava.core.decode import frame_files, wanted_mask
from vava.core.errors import VavaError
from vava.core.files import atomic_path
from vava.core.records import MAX_FRAMES, VideoRecord


def write_video(path: str | Path, frames: np.ndarray, fps: float, *, crf: int = 18, preset: str = "veryfast") -> None:
    """Encode `frames` (T, H, W, 3) uint8 RGB as libx264 / yuv420p at `fps` into `path`.

    The container follows the suffix of `path` (e.g. `.mp4`). H and W must be
    even (yuv420p halves the chroma planes): odd sizes raise `ValueError` rather than being padded,
    so decoded frames always have the size that was written. `crf` and `preset` are x264's quality
    and speed settings ("veryfast" encodes noisy frames several times faster than "medium", at about
    the same size). The same frames always give the same bytes. The file is written by
    `atomic_path`: a killed writer never leaves a truncated file under `path`, a symlink there is
    replaced rather than followed, and a full disk is a one-line `VavaError`.
    """
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"frames must be a (T, H, W, 3) uint8 array, got {frames.dtype} {frames.shape}")
    count, height, width, _ = frames.shape
    if count == 0:
        raise ValueError("frames must hold at least one frame")
    if height % 2 or width % 2:
        raise ValueError(f"frame height and width must be even for yuv420p, got {height}x{width}")
    if not fps > 0:
        raise ValueError(f"fps must be positive, got {fps}")
    path = Path(path)
    with atomic_path(path) as tmp, av.open(str(tmp), mode="w") as container:
        stream = container.add_stream("libx264", rate=Fraction(fps).limit_denominator(1001))
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.codec_context.thread_count = 1
        # x264's macroblock-tree rate control gave different bytes for the same small frames
        # from run to run (seen at 32-96 px, even on one thread); without it output is stable.
        stream.options = {"crf": str(crf), "preset": preset, "x264-params": "mbtree=0"}
        for image in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        container.mux(stream.encode(None))


def probe_video(path: str | Path) -> tuple[int, float | None]:
    """A video's frame count and frame rate (None when unknown), without decoding any frame.

    Video files (PyAV): the count is the container's frame count when it stores one greater than 0
    (MP4 and MOV do), else the number of non-empty packets of the first video stream, read by
    demuxing the whole file (Matroska, WebM, AVI; one packet per frame for the codecs FFmpeg reads
    here). The rate is the stream's average rate when it is set and positive, else None. A folder of
    frames: the count is its JPEG/PNG files and the rate is None (a folder stores none).
    """
    path = Path(path)
    if path.is_dir():
        return len(frame_files(path)), None
    if not path.is_file():  # a FIFO or device would block or never end
        raise VavaError(f"{path}: {'not a regular file or a folder of frames' if path.exists() else 'no such file'}")
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise VavaError(f"{path}: no video stream")
            stream = container.streams.video[0]
            rate = stream.average_rate
            fps = float(rate) if rate and rate > 0 else None
            frames = stream.frames if stream.frames > 0 else sum(1 for p in container.demux(stream) if p.size)
    except av.FFmpegError as err:
        raise VavaError(f"{path}: cannot read the video ({err.strerror or err})") from None
    if frames > MAX_FRAMES:  # a header's count is not checked by FFmpeg; callers size label arrays by it
        raise VavaError(f"{path}: the container states {frames} frames, more than the {MAX_FRAMES} a video may have "
                        "(a damaged or crafted header)")
    return frames, fps


def kept_frames(record: VideoRecord, target_fps: float | None) -> int:
    """Frames of `record` a decode keeps (and an extraction caches): probed, resampled and masked as the
    decoder does (the stream's rate when the file has one, else the record's). A video stored as one record of a
    container file (`member`, e.g. a TFRecord shard) is not probed: it has one label per frame."""
    if record.member is None:
        frames, fps = probe_video(record.path)
    elif record.labels is not None:
        frames, fps = record.labels.shape[0], None
    else:
        raise VavaError(f"{record.path}: record at byte {record.member} has no labels to count its frames by")
    source_fps = fps or record.fps
    if target_fps is not None and not source_fps:
        raise VavaError(f"frame rate unknown, cannot resample to {target_fps} fps (give `fps` in the manifest)")
    return int(np.count_nonzero(wanted_mask(record, frames, source_fps, target_fps)))


def planned_frames(records: list[VideoRecord], target_fps: float | None) -> int:
    """`kept_frames` of all `records` (the frames an extraction caches); a video that cannot be probed
    counts 0 (its decode fails, or finds its count as it goes)."""
    total = 0
    for record in records:
        try:
            total += kept_frames(record, target_fps)
        except VavaError:
            continue
    return total
