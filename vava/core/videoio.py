"""Encoding frames to H.264 video files (decoding lives with the feature extractor)."""
from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from vava.core.files import atomic_path


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
