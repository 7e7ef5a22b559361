"""A video file's frame rate and frame count from its container, without decoding frames."""
from __future__ import annotations

from pathlib import Path

import av

from vava.core.errors import VavaError


def probe_video(path: Path, where: str) -> tuple[float, int]:
    """(fps, frames) of the first video stream of `path`.

    The frame rate is the stream's average rate (the one the decoder reports). The frame count is
    the container's own when it stores one; when it is 0 or missing (e.g. WebM/Matroska), the
    stream's packets are counted by demuxing, which reads the file but decodes nothing.
    """
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise VavaError(f"{where}: {path} has no video stream")
            stream = container.streams.video[0]
            if not stream.average_rate:
                raise VavaError(f"{where}: {path} does not state its frame rate")
            frames = stream.frames or sum(1 for packet in container.demux(stream) if packet.size)
    except av.FFmpegError as err:
        raise VavaError(f"{where}: cannot read {path} ({err.strerror or err})") from None
    if not frames:
        raise VavaError(f"{where}: {path} holds no video frames")
    return float(stream.average_rate), frames
