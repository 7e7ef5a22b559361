"""Video files decoded by torchcodec, the optional alternative to PyAV (`pip install 'vava-align[torchcodec]'`).

torchcodec loads FFmpeg's shared libraries (major versions 4 to 9) from the system; the copy of FFmpeg
inside PyAV's wheels is not one it can use.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from vava.core.errors import VavaError

FFMPEG_HINT = "install FFmpeg's shared libraries, major version 4 to 9 (e.g. `apt install ffmpeg`)"


def torchcodec_problem() -> str | None:
    """Why torchcodec cannot decode video here, in one line, or None when it can."""
    try:
        import torchcodec
    except ImportError:
        return "torchcodec is not installed (pip install 'vava-align[torchcodec]')"
    except Exception as err:  # its import runs backend plug-ins, which may fail in any way
        return f"torchcodec fails to load ({type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''})"
    if torchcodec.ffmpeg_major_version is None:
        return f"torchcodec cannot load FFmpeg's shared libraries; {FFMPEG_HINT}"
    return None


@dataclass(frozen=True)
class CodecVideo:
    """An opened video file: its frame count and rate, and its frames by index."""

    frames: int
    fps: float | None
    frames_at: Callable[[list[int]], torch.Tensor]  # uint8 (n, 3, H, W) of the given decoded-frame indices


def open_torchcodec(path: Path, size: Callable[[int, int], tuple[int, int]] | None, what: str) -> CodecVideo:
    """`path` opened with torchcodec on the CPU; frames resized by FFmpeg to `size(height, width)` when given.

    Frames are counted by scanning the file (torchcodec's exact seek mode), as decoding every frame would.
    """
    from torchcodec.decoders import VideoDecoder
    from torchcodec.transforms import Resize

    def failure(err: Exception) -> VavaError:
        return VavaError(f"{what}: cannot decode {path} with torchcodec ({str(err).splitlines()[0]})")

    try:
        transforms = None
        if size is not None:
            stream = VideoDecoder(str(path), seek_mode="approximate").metadata
            transforms = [Resize(size(stream.height, stream.width))]
        decoder = VideoDecoder(str(path), seek_mode="exact", transforms=transforms)
    except (RuntimeError, ValueError) as err:
        raise failure(err) from None
    fps = decoder.metadata.average_fps

    def frames_at(indices: list[int]) -> torch.Tensor:
        try:
            return decoder.get_frames_at(indices).data
        except (RuntimeError, ValueError) as err:
            raise failure(err) from None

    return CodecVideo(len(decoder), float(fps) if fps else None, frames_at)
