"""Video writing (vava.core.videoio): round trip, byte-identical output, size checks, symlinks and a full disk."""
from __future__ import annotations

import errno
import os
from pathlib import Path

import av
import numpy as np
import pytest

from vava.core.errors import VavaError
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


# -- the written file replaces a symlink; a full disk keeps the old one ----------------------------


def test_align_video_replaces_a_symlink_and_reports_a_full_disk(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    victim, out, frames = tmp_path / "victim.mp4", tmp_path / "aligned.mp4", np.zeros((2, 16, 16, 3), dtype=np.uint8)
    victim.write_text("precious")
    out.symlink_to(victim)
    write_video(out, frames, 15.0)
    assert victim.read_text() == "precious" and not out.is_symlink()
    written = out.read_bytes()

    def disk_full(src: object, dst: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "replace", disk_full)
    with pytest.raises(VavaError, match=r"aligned.mp4: cannot write \(the disk is full\); nothing was replaced$"):
        write_video(out, frames[:1], 15.0)
    assert out.read_bytes() == written and sorted(p.name for p in tmp_path.iterdir()) == ["aligned.mp4", "victim.mp4"]
