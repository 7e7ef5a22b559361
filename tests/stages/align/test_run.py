"""Alignment paths (nearest neighbour, DTW, re-timing), the evaluation plots, and `align_videos`
end to end on a tiny extracted and trained run."""
from __future__ import annotations

import csv
from pathlib import Path

import av
import h5py
import numpy as np
import pytest
from PIL import Image

from vava.core.config import parse_overrides
from vava.stages.train.config import load_config
from vava.pipeline.datasets.folder import load_folder
from vava.core.errors import VavaError
from vava.core.correspondence import dtw_path, nearest_neighbour_path, warping_path
from vava.core.figures import ALIGNMENT_SIZE, DPI, plot_alignment
from vava.stages.align.run import TrainedRun, align_videos, retime
from vava.stages.evaluate.plots import LOSS_ROW_HEIGHT, LOSS_WIDTH, TSNE_SIZE, plot_loss_curve, plot_tsne
from vava.stages.extract.run import ExtractOptions, extract
from vava.stages.train.loop import train
from tests.conftest import make_folder_dataset

TINY = ["steps=2", "model.conv_channels=8", "model.fc_channels=8", "model.embedding_dim=8",
        "data.frames_per_video=6", "data.batch_pairs=1"]


# -- paths -----------------------------------------------------------------------------------
def naive_dtw(cost: np.ndarray) -> np.ndarray:
    """Textbook DTW: cell-by-cell accumulation, then backtracking (diagonal first on ties)."""
    n, m = cost.shape
    acc = np.full((n + 1, m + 1), np.inf)
    acc[0, 0] = 0.0
    for i in range(1, n + 1):
        for j in range(1, m + 1):
            acc[i, j] = cost[i - 1, j - 1] + min(acc[i - 1, j - 1], acc[i - 1, j], acc[i, j - 1])
    i, j, path = n, m, [(n - 1, m - 1)]
    while (i, j) != (1, 1):
        i, j = min(((i - 1, j - 1), (i - 1, j), (i, j - 1)), key=lambda cell: acc[cell])
        path.append((i - 1, j - 1))
    return np.array(path[::-1])


def test_nearest_neighbour_path_on_hand_made_embeddings() -> None:
    a = np.array([[0.0, 0.0], [1.0, 0.0], [5.0, 5.0], [1.1, 0.1]])
    b = np.array([[5.0, 4.9], [0.1, 0.0], [1.2, 0.0]])
    assert nearest_neighbour_path(a, b).tolist() == [1, 2, 0, 2]


def test_dtw_on_hand_computed_examples() -> None:
    cost = np.array([[0.0, 1.0, 4.0, 4.0],
                     [4.0, 4.0, 1.0, 4.0],
                     [4.0, 4.0, 4.0, 0.0]])
    assert warping_path(cost).tolist() == [[0, 0], [0, 1], [1, 2], [2, 3]]  # total 2, the only path that cheap
    a, b = np.array([[0.0], [1.0], [2.0]]), np.array([[0.0], [1.0], [1.0], [2.0]])
    assert dtw_path(a, b).tolist() == [[0, 0], [1, 1], [1, 2], [2, 3]]  # total 0
    assert warping_path(np.array([[3.0]])).tolist() == [[0, 0]]


@pytest.mark.parametrize("shape", [(9, 14), (14, 9), (1, 6), (6, 1), (25, 25)])
def test_dtw_equals_naive_dp_on_random_costs(shape: tuple[int, int]) -> None:
    cost = np.random.default_rng(sum(shape)).random(shape)
    path, expected = warping_path(cost), naive_dtw(cost)
    assert np.array_equal(path, expected)


def test_dtw_path_is_monotone_from_start_to_end() -> None:
    rng = np.random.default_rng(1)
    a, b = rng.standard_normal((13, 4)), rng.standard_normal((7, 4))
    path = dtw_path(a, b)
    assert path[0].tolist() == [0, 0] and path[-1].tolist() == [12, 6]
    assert {tuple(step) for step in np.diff(path, axis=0)} <= {(1, 0), (0, 1), (1, 1)}


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


# -- plots -----------------------------------------------------------------------------------
def png_size(path: Path) -> tuple[int, int]:
    assert path.stat().st_size > 1000
    with Image.open(path) as image:
        return image.size


def pixels(size: tuple[float, float]) -> tuple[int, int]:
    return round(size[0] * DPI), round(size[1] * DPI)


def write_embeddings(path: Path) -> Path:
    """An embeddings.h5 of three val videos and one train video (two phases, background label 2)."""
    rng = np.random.default_rng(0)
    with h5py.File(path, "w") as handle:
        for i, split in enumerate(["val", "val", "train", "val"]):
            labels = np.repeat([0, 1, 2], 8)
            group = handle.create_group(f"videos/v{i}")
            embeddings = labels[:, None] + 0.1 * rng.standard_normal((24, 8))
            group.create_dataset("embeddings", data=embeddings.astype(np.float32))
            group.create_dataset("labels", data=labels)
            group.attrs.update({"id": f"v{i}", "split": split, "action": "pour", "phases": ["reach", "pour", "idle"],
                                "background_label": 2})
    return path


def test_plots_write_pngs_of_the_expected_size(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    a, b = rng.standard_normal((20, 4)), rng.standard_normal((26, 4))
    png = plot_alignment(a, b, tmp_path / "figs" / "align.png", np.repeat([0, 1], 10), np.repeat([0, 1], 13),
                         path=dtw_path(a, b), matches=nearest_neighbour_path(a, b), phases=("up", "down"))
    assert png_size(png) == pixels(ALIGNMENT_SIZE)
    assert png_size(plot_tsne(write_embeddings(tmp_path / "embeddings.h5"), tmp_path / "tsne.png")) == pixels(TSNE_SIZE)

    log = tmp_path / "train_log.csv"
    with open(log, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["step", "loss", "align", "intra", "lr", "steps_per_s"])
        writer.writerows([step, 10.0 / step, 1.0 / step, -0.5, 1e-4, 3.0] for step in range(10, 110, 10))
    assert png_size(plot_loss_curve(log, tmp_path / "loss.png")) == pixels((LOSS_WIDTH, 2 * LOSS_ROW_HEIGHT))


def test_plot_errors_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(VavaError, match="missing.h5: no such file"):
        plot_tsne(tmp_path / "missing.h5", tmp_path / "t.png")
    (tmp_path / "junk.h5").write_text("not hdf5")
    with pytest.raises(VavaError, match="junk.h5: not a readable HDF5 file"):
        plot_tsne(tmp_path / "junk.h5", tmp_path / "t.png")
    with pytest.raises(VavaError, match="missing.csv: no such training log"):
        plot_loss_curve(tmp_path / "missing.csv", tmp_path / "l.png")
    (tmp_path / "log.csv").write_text("step,lr\n1,0.1\n")
    with pytest.raises(VavaError, match="log.csv: not a training log"):
        plot_loss_curve(tmp_path / "log.csv", tmp_path / "l.png")
    with pytest.raises(VavaError, match="a.png: embeddings must be"):
        plot_alignment(np.zeros((3, 2)), np.zeros((3, 5)), tmp_path / "a.png")


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
    assert decoded_shape(out) == (18, 64 + 4, 2 * 64)  # A's frames; both halves 64 px wide, time bars below
    assert png_size(tmp_path / "align.png") == pixels(ALIGNMENT_SIZE)


def test_video_file_embeds_like_its_cached_features(tiny_run: tuple[Path, Path]) -> None:
    root, run = tiny_run
    trained = TrainedRun(run, device="cpu", height=32)
    cached, decoded = trained.clip("v1"), trained.clip(str(root / "videos" / "v1.mp4"))
    assert cached.labels is not None and decoded.labels is None and cached.fps == decoded.fps == 15.0
    assert np.array_equal(cached.frames, decoded.frames) and cached.frames.shape == (22, 32, 32, 3)
    assert np.allclose(cached.embeddings, decoded.embeddings, atol=1e-3)


def test_align_errors(tiny_run: tuple[Path, Path], tmp_path: Path, toy_features: Path) -> None:
    root, run = tiny_run
    out = tmp_path / "x.mp4"
    with pytest.raises(VavaError, match="nope: neither a video of feature set"):
        align_videos(run, "nope", "v1", out, device="cpu")
    with pytest.raises(VavaError, match="missing.mp4: neither a video of feature set"):
        align_videos(run, "v0", str(tmp_path / "missing.mp4"), out, device="cpu")
    with pytest.raises(VavaError, match="--method: 'ot' is not one of dtw, nn"):
        align_videos(run, "v0", "v1", out, method="ot")
    with pytest.raises(VavaError, match="no trained checkpoint"):
        align_videos(tmp_path / "identity-run", "v0", "v1", out)
    toy_run = tmp_path / "toy-run"
    train(toy_features, toy_run, load_config(None, parse_overrides(TINY)), device="cpu", progress=False)
    with pytest.raises(VavaError, match="video 'toy2': cannot read the dataset the features came from"):
        align_videos(toy_run, "toy2", "toy5", out, device="cpu")
    assert not out.exists()
