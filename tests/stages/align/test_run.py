"""`vava align` (stages/align/run.py): retiming, aligning cached videos with video files, errors, a feature set
that moved."""
from __future__ import annotations

import io
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from tests.conftest import make_folder_dataset, write_toy_features
from tests.helpers import cli, one_line_error, only_checkpoint, pixels, png_size, saved
from vava.core.config import parse_overrides
from vava.core.correspondence import dtw_path, nearest_neighbour_path
from vava.core.embeddings_file import load_embeddings
from vava.core.errors import VavaError
from vava.core.figures import ALIGNMENT_SIZE
from vava.pipeline.datasets.folder import load_folder
from vava.pipeline.datasets.pouring import encode_jpeg, fixture_frames, load_pouring, write_fixture
from vava.stages.align.run import TrainedRun, align_videos, retime
from vava.stages.embed.run import embed
from vava.stages.extract.run import ExtractOptions, extract
from vava.stages.train.config import load_config
from vava.stages.train.loop import train

TINY = ["steps=2", "model.conv_channels=8", "model.fc_channels=8", "model.embedding_dim=8",
        "data.frames_per_video=6", "data.batch_pairs=1", "model.standardize=true"]


def test_retime() -> None:
    assert retime(np.array([[0, 0], [1, 1], [1, 2], [1, 3], [2, 4]]), 3).tolist() == [0, 2, 4]
    rng = np.random.default_rng(2)
    a, b = rng.standard_normal((30, 3)), rng.standard_normal((17, 3))
    shown = retime(dtw_path(a, b), len(a))
    assert shown.shape == (30,) and (np.diff(shown) >= 0).all() and shown[0] == 0 and shown[-1] == 16
    matches = nearest_neighbour_path(a, b)
    assert np.array_equal(retime(np.column_stack([np.arange(30), matches]), 30), matches)
    with pytest.raises(ValueError, match="frame 1 of A unmatched"):
        retime(np.array([[0, 0], [2, 1]]), 3)


# -- align_videos ----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(dataset root, run folder): three tiny videos, extracted (random ResNet-50, 64 px), trained 2 steps."""
    base = tmp_path_factory.mktemp("align")
    root = base / "data"
    make_folder_dataset(root, [18, 22, 25])
    options = ExtractOptions(weights="random", image_size=64, batch_size=8, device="cpu", progress=False)
    summary = extract(load_folder(root), base / "cache", options, dataset={"adapter": "folder", "root": str(root)})
    train(summary.path, base / "run", load_config(None, parse_overrides(TINY)), device="cpu", progress=False)
    return root, base / "run"


def decoded_shape(path: Path) -> tuple[int, int, int]:
    with av.open(str(path)) as container:
        frames = [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]
    return len(frames), *frames[0].shape[:2]


@pytest.mark.parametrize("method", ["dtw", "nn"])
def test_align_cached_video_with_video_file(tiny_run: tuple[Path, Path], tmp_path: Path, method: str) -> None:
    root, run = tiny_run
    out = align_videos(run, "v0", str(root / "videos" / "v1.mp4"), tmp_path / "out" / "aligned.mp4", method=method,
                       plot_png=tmp_path / "align.png", height=64, device="cpu")
    assert out == tmp_path / "out" / "aligned.mp4"
    # A's frames; both halves 64 px wide: a 14 px caption line, the frames, 4 px time bars, a 14 px legend line
    assert decoded_shape(out) == (18, 14 + 64 + 4 + 14, 2 * 64)
    assert png_size(tmp_path / "align.png") == pixels(ALIGNMENT_SIZE)


def test_video_file_embeds_like_its_cached_features(tiny_run: tuple[Path, Path]) -> None:
    root, run = tiny_run
    trained = TrainedRun(run, device="cpu", height=32)
    cached, decoded = trained.clip("v1"), trained.clip(str(root / "videos" / "v1.mp4"))
    assert cached.labels is not None and decoded.labels is None and cached.fps == decoded.fps == 15.0
    assert np.array_equal(cached.frames, decoded.frames) and cached.frames.shape == (22, 32, 32, 3)
    assert np.allclose(cached.embeddings, decoded.embeddings, atol=1e-3)
    # the train split's statistics travel in the checkpoint: align embeds as embed does
    assert float(trained.embedder.input_std.min()) > 0 and float(trained.embedder.input_mean.abs().max()) > 0
    stored = next(v for v in load_embeddings(embed(run, progress=False)).videos if v.id == "v1")
    assert np.allclose(cached.embeddings, stored.embeddings, atol=1e-5)


def test_align_errors(tiny_run: tuple[Path, Path], tmp_path: Path, toy_features: Path) -> None:
    root, run = tiny_run
    out = tmp_path / "x.mp4"
    with pytest.raises(VavaError, match="nope: neither a video of feature set"):
        align_videos(run, "nope", "v1", out, device="cpu")
    with pytest.raises(VavaError, match="missing.mp4: neither a video of feature set"):
        align_videos(run, "v0", str(tmp_path / "missing.mp4"), out, device="cpu")
    with pytest.raises(VavaError, match="^method: 'ot' is not one of dtw, nn"):
        align_videos(run, "v0", "v1", out, method="ot")
    with pytest.raises(VavaError, match="no trained checkpoint"):
        align_videos(tmp_path / "identity-run", "v0", "v1", out)
    toy_run = tmp_path / "toy-run"
    train(toy_features, toy_run, load_config(None, parse_overrides(TINY)), device="cpu", progress=False)
    with pytest.raises(VavaError, match="video 'toy2': cannot read the dataset the features came from"):
        align_videos(toy_run, "toy2", "toy5", out, device="cpu")
    assert not out.exists()


def test_a_video_cached_from_a_tfrecord_shard_shows_the_frames_of_its_record(tmp_path: Path) -> None:
    write_fixture(tmp_path / "data")
    summary = extract(load_pouring(tmp_path / "data"), tmp_path / "cache",
                      ExtractOptions(weights="random", image_size=32, device="cpu", progress=False))
    train(summary.path, tmp_path / "run", load_config(None, parse_overrides(TINY)), device="cpu", progress=False)
    clip = TrainedRun(tmp_path / "run", device="cpu", height=8).clip("pour_b")
    jpegs = np.stack([np.array(Image.open(io.BytesIO(encode_jpeg(frame))).convert("RGB"))
                      for frame in fixture_frames(1)])
    assert clip.frames.shape == (6, 8, 8, 3) and clip.labels.tolist() == [0, 0, 1, 1, 2, 2]
    assert np.abs(clip.frames.astype(int) - jpegs).max() <= 1  # resized to the display height it already has


def test_decoding_shows_progress_with_a_total(tiny_run: tuple[Path, Path], tmp_path: Path,
                                              capsys: pytest.CaptureFixture) -> None:
    root, run = tiny_run
    align_videos(run, "v0", str(root / "videos" / "v1.mp4"), tmp_path / "a.mp4", height=32, device="cpu",
                 progress=True)
    bars = [line.strip() for line in capsys.readouterr().err.replace("\r", "\n").splitlines() if "100%" in line]
    assert any(line.startswith("align: decode v0: 100%") and " 18/18 [" in line for line in bars)
    assert any(line.startswith("align: decode and embed v1.mp4: 100%") and " 22/22 [" in line for line in bars)


# -- output suffixes; a feature set that moved -----------------------------------------------------


def test_align_output_suffixes(tmp_path: Path) -> None:
    with pytest.raises(VavaError, match=r"^out: .*aligned.avi must end in .mp4"):
        align_videos(tmp_path / "run", "a", "b", tmp_path / "aligned.avi")
    with pytest.raises(VavaError, match=r"^plot: .*plot.jpg must end in .png"):
        align_videos(tmp_path / "run", "a", "b", tmp_path / "aligned.mp4", plot_png=tmp_path / "plot.jpg")
    one_line_error(cli("align", "--run", tmp_path / "run", "a", "b", "--out", tmp_path / "x.gif"),
                   r"--out: .*x.gif must end in .mp4")


def test_align_takes_the_feature_set_from_features_when_it_moved(run: Path, features: Path, tmp_path: Path) -> None:
    moved = write_toy_features(tmp_path / "moved" / "toyfeatures00000")
    only_checkpoint(run, {**saved(run), "features": str(tmp_path / "gone")})
    with pytest.raises(VavaError, match=r"gone.*the feature set the run was trained on; pass features if it moved\)$"):
        TrainedRun(run, device="cpu")
    assert TrainedRun(run, device="cpu", features=moved).feature_set.path == moved
    cached = cli("align", "--run", run, "toy0", "toy1", "--out", tmp_path / "a.mp4", "--features", moved)
    one_line_error(cached, r"video 'toy0': cannot read the dataset the features came from")
