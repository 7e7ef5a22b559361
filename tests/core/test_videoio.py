"""Video writing (vava.core.videoio): round trip, byte-identical output, size checks."""
from __future__ import annotations

import av
import numpy as np
import pytest

from vava.core.videoio import write_video
from vava.pipeline.datasets.synthetic import (
    ACTIONS,
    WILD,
    SynthConfig,
    render_video,
    video_rng,
)


def test_write_video_round_trips_and_leaves_no_temp_files(tmp_path):
    frames = np.zeros((5, 32, 48, 3), dtype=np.uint8)
    frames[:, :, :24] = 200
    write_video(tmp_path / "clip.mp4", frames, 15.0)
    assert [p.name for p in tmp_path.iterdir()] == ["clip.mp4"]
    with av.open(str(tmp_path / "clip.mp4")) as container:
        decoded = np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])
    assert decoded.shape == frames.shape
    assert np.abs(decoded.astype(int) - frames).mean() < 3


def test_write_video_is_byte_identical_for_the_same_frames(tmp_path):
    """Small noisy frames used to come out differently from run to run (x264 mbtree)."""
    config = SynthConfig(variations=WILD, size=64, frames=(20, 30))
    for a, action in enumerate(list(ACTIONS)[:2]):
        frames, *_ = render_video(action, video_rng(0, a, 0), config)
        encodings = set()
        for attempt in range(4):
            write_video(tmp_path / f"{attempt}.mp4", frames, 15.0)
            encodings.add((tmp_path / f"{attempt}.mp4").read_bytes())
        assert len(encodings) == 1, action


def test_write_video_rejects_odd_sizes(tmp_path):
    with pytest.raises(ValueError, match="even"):
        write_video(tmp_path / "odd.mp4", np.zeros((3, 31, 32, 3), dtype=np.uint8), 15.0)
    assert not any(tmp_path.iterdir())
