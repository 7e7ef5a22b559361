"""torchcodec, the optional decoder: why it cannot be used (one line, naming --decoder), and where it loads, the
same kept frames as PyAV."""
from __future__ import annotations

import sys
import types
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.conftest import moving_square
from tests.helpers import EXTRACT, cli
from vava.core.decode import VideoDecoder
from vava.core.errors import ConfigError
from vava.core.preprocess import Preprocessing
from vava.core.records import VideoRecord
from vava.core.torchcodec_decode import FFMPEG_HINT, torchcodec_problem
from vava.core.videoio import write_video
from vava.stages.extract.run import ExtractOptions

PROBLEM = torchcodec_problem()


def test_a_missing_package_is_named_with_its_install_command(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "torchcodec", None)  # what an absent package gives on import
    assert torchcodec_problem() == "torchcodec is not installed (pip install 'vava-align[torchcodec]')"


def test_missing_ffmpeg_libraries_are_named(monkeypatch: pytest.MonkeyPatch) -> None:
    loaded_without_ffmpeg = types.ModuleType("torchcodec")
    loaded_without_ffmpeg.ffmpeg_major_version = None  # what torchcodec sets when no FFmpeg 4-9 library loads
    monkeypatch.setitem(sys.modules, "torchcodec", loaded_without_ffmpeg)
    assert torchcodec_problem() == f"torchcodec cannot load FFmpeg's shared libraries; {FFMPEG_HINT}"


def test_decoder_option_is_refused_in_one_line_when_torchcodec_cannot_load(
        tiny_dataset: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "torchcodec", None)  # not installed, wherever the test runs
    problem = "torchcodec is not installed (pip install 'vava-align[torchcodec]')"
    with pytest.raises(ConfigError) as caught:
        ExtractOptions(decoder="torchcodec").validate()
    assert str(caught.value) == f"decoder: {problem}"
    result = cli(*EXTRACT, "--root", tiny_dataset, "--cache", tmp_path / "c", "--decoder", "torchcodec")
    assert result.exit_code == 2 and "Traceback" not in result.output and not (tmp_path / "c").exists()
    assert f"Error: Invalid value for --decoder: {problem}\n" in result.output
    assert cli(*EXTRACT, "--root", tiny_dataset, "--cache", tmp_path / "c", "--decoder", "pyav").exit_code == 0


@pytest.mark.skipif(PROBLEM is not None, reason=f"torchcodec cannot be used here: {PROBLEM}")
@pytest.mark.parametrize("scaler", ["uint8", "float"])
def test_torchcodec_keeps_the_frames_pyav_keeps(tmp_path: Path, scaler: str) -> None:
    write_video(tmp_path / "v.mp4", moving_square(30, seed=0), fps=30)
    keep = np.ones(30, dtype=bool)
    keep[[3, 4, 12]] = False  # frames 3 and 12 are also kept by 10 fps resampling: the mask drops them
    record = VideoRecord(id="v", path=tmp_path / "v.mp4", split="train", action="a", labels=np.zeros(30, np.int64),
                         fps=30.0, keep=keep)
    decoded = {}
    for name in ("pyav", "torchcodec"):
        decoder = VideoDecoder(record, chunk_frames=4, target_fps=10,
                               preprocessing=Preprocessing(32, "center_crop", scaler=scaler, decoder=name))
        chunks = list(decoder)
        assert np.concatenate([c.indices for c in chunks]).tolist() == [0, 6, 9, 15, 18, 21, 24, 27]
        assert (decoder.decoded_frames, decoder.source_fps) == (30, 30.0)
        decoded[name] = torch.cat([c.frames for c in chunks]).float()
    if scaler == "float":  # full-size RGB frames: the same FFmpeg conversion
        assert torch.equal(decoded["pyav"], decoded["torchcodec"])
    else:  # both convert to RGB, then resize bilinearly with antialiasing: the same values, up to rounding
        assert decoded["pyav"].shape == decoded["torchcodec"].shape == (8, 3, 32, 32)
        assert (decoded["pyav"] - decoded["torchcodec"]).abs().max() <= 1.0
