"""`embed`: HDF5 layout, values equal the embedder applied by hand, chunking, identity kinds, flags."""
from __future__ import annotations

import re
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from tests.conftest import toy_inputs
from vava.cache.store import FeatureSet
from vava.core.config import parse_overrides
from vava.core.embedder import Embedder, context_indices
from vava.core.embeddings_file import load_embeddings
from vava.core.errors import VavaError
from vava.core.run_folder import load_checkpoint
from vava.stages.embed.run import SD_FLOOR, embed
from vava.stages.train.config import load_config
from vava.stages.train.loop import train

TINY = ["model.conv_channels=16", "model.fc_channels=16", "model.embedding_dim=8", "data.frames_per_video=8",
        "data.batch_pairs=2", "steps=2", "model.context_stride=4"]


@pytest.fixture
def trained(toy_features: Path, tmp_path: Path) -> Path:
    run = tmp_path / "run"
    train(toy_features, run, load_config(None, parse_overrides(TINY)), progress=False)
    return run


def test_embeddings_file(trained: Path, toy_features: Path) -> None:
    path = embed(trained, progress=False)
    assert path == trained / "embeddings.h5"
    fs = FeatureSet.open(toy_features)
    state = load_checkpoint(trained / "checkpoints")
    embedder = Embedder(16, load_config(None, parse_overrides(TINY)).model).eval()
    embedder.load_state_dict(state["embedder"])
    with h5py.File(path) as handle:
        assert handle.attrs["embedder"] == "trained" and handle.attrs["step"] == 2
        assert handle.attrs["fingerprint"] == "toyfeatures00000" and handle.attrs["objective"] == "vava"
        assert sorted(handle["videos"]) == [v.id for v in fs.videos()]
        group = handle["videos/toy2"]
        assert (group.attrs["split"], group.attrs["action"], group.attrs["background_label"]) == ("val", "a", -1)
        assert np.array_equal(group["labels"][:], fs.labels("toy2"))
        rows = group["embeddings"][:]
    maps = torch.from_numpy(fs.read("toy2")).float()
    stacks = context_indices(torch.arange(maps.shape[0]), 1, 4)
    with torch.inference_mode():
        expected = embedder(maps[stacks]).numpy()
    assert rows.shape == (41, 8) and rows.dtype == np.float32
    assert np.allclose(rows, expected, atol=1e-5)


def test_standardisation_travels_from_training_through_the_checkpoint_to_embed(toy_features: Path,
                                                                              tmp_path: Path) -> None:
    """With model.standardize the checkpoint holds the train split's channel statistics, and embed applies
    them: its rows equal the embedder run by hand on maps z-scored with the train frames' mean and sd."""
    run = tmp_path / "standardised"
    train(toy_features, run, load_config(None, parse_overrides([*TINY, "model.standardize=true"])), progress=False)
    fs = FeatureSet.open(toy_features)
    maps = np.concatenate([fs.read(v.id) for v in fs.videos() if v.split == "train"]).astype(np.float64)
    mean, sd = maps.mean(axis=(0, 2, 3)), maps.std(axis=(0, 2, 3))
    state = load_checkpoint(run / "checkpoints")
    np.testing.assert_allclose(state["embedder"]["input_mean"].numpy(), mean, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(state["embedder"]["input_std"].numpy(), np.maximum(sd, 1e-3 * sd.mean()), rtol=1e-4)
    plain = Embedder(16, load_config(None, parse_overrides(TINY)).model).eval()
    plain.load_state_dict({k: v for k, v in state["embedder"].items() if not k.startswith("input_")})
    video = torch.from_numpy(fs.read("toy2")).double()
    scale = torch.from_numpy(np.maximum(sd, 1e-3 * sd.mean()))[:, None, None]
    z = ((video - torch.from_numpy(mean)[:, None, None]) / scale).float()
    with torch.inference_mode():
        expected = plain(z[context_indices(torch.arange(z.shape[0]), 1, 4)]).numpy()
    rows = load_embeddings(embed(run, progress=False))
    assert np.allclose(next(v for v in rows.videos if v.id == "toy2").embeddings, expected, atol=1e-4)


def test_chunking_does_not_change_embeddings(trained: Path) -> None:
    whole = embed(trained, progress=False)
    with h5py.File(whole) as handle:
        reference = {k: handle[f"videos/{k}/embeddings"][:] for k in handle["videos"]}
    embed(trained, chunk_frames=3, progress=False)  # chunks shorter than the context stride
    with h5py.File(whole) as handle:
        assert all(np.allclose(handle[f"videos/{k}/embeddings"][:], v, atol=1e-6) for k, v in reference.items())


def write_features(path: Path, videos: dict[str, tuple[str, np.ndarray]]) -> Path:
    """A feature set of (split, maps (T, C, 1, 1)) per video id, one action, two phases (halves)."""
    fs = FeatureSet.create(path, path.name, toy_inputs(len(videos)), {"dataset": {"root": "toy"}})
    for video_id, (split, maps) in videos.items():
        writer = fs.begin_video(video_id, maps.shape[1:], {"split": split, "action": "a", "phases": ["p0", "p1"]})
        writer.append(maps.astype(np.float16))
        length = maps.shape[0]
        writer.finish(np.arange(length) * 2 // length, np.arange(length), {"decoded_frames": length, "fps": 15.0})
    return path


def test_identity_features_embeds_pooled_maps_of_chosen_splits(toy_features: Path, tmp_path: Path) -> None:
    path = embed(tmp_path / "random-features", toy_features, splits=("val",), identity="features", progress=False)
    fs = FeatureSet.open(toy_features)
    with h5py.File(path) as handle:
        assert handle.attrs["embedder"] == "identity" and handle.attrs["identity_kind"] == "features"
        assert sorted(handle["videos"]) == ["toy2", "toy5"]
        rows = handle["videos/toy5/embeddings"][:]
    assert np.allclose(rows, fs.read("toy5").astype(np.float32).mean(axis=(2, 3)), atol=1e-6)


def test_identity_time_is_t_over_t(toy_features: Path, tmp_path: Path) -> None:
    data = load_embeddings(embed(tmp_path / "time", toy_features, identity="time", progress=False))
    assert data.attrs["identity_kind"] == "time" and data.attrs["objective"] == "none"
    for video in data.videos:  # lengths 30, 36, 41, 33, 38, 44
        length = FeatureSet.open(toy_features).video(video.id).num_frames
        assert video.embeddings.shape == (length, 1)
        assert video.embeddings[:, 0].tolist() == [np.float32(t / length) for t in range(length)]
    assert data.videos[0].embeddings[[0, -1], 0].tolist() == [0.0, np.float32(29 / 30)]


def test_identity_features_standardised_uses_the_train_split(toy_features: Path, tmp_path: Path) -> None:
    fs = FeatureSet.open(toy_features)
    pooled = {v.id: fs.read(v.id).astype(np.float32).mean(axis=(2, 3)) for v in fs.videos()}
    train = np.concatenate([pooled[v.id] for v in fs.videos() if v.split == "train"]).astype(np.float64)
    mean, sd = train.mean(axis=0), train.std(axis=0)
    path = embed(tmp_path / "z", toy_features, splits=("val",), identity="features-standardised", progress=False)
    data = load_embeddings(path)
    assert [v.id for v in data.videos] == ["toy2", "toy5"]  # only val embedded, statistics still from train
    for video in data.videos:
        assert np.allclose(video.embeddings, (pooled[video.id] - mean) / sd, atol=1e-4)
    assert {k: data.attrs[k] for k in ("identity_kind", "standardised_on", "standardised_videos",
                                       "standardised_frames")} == {
        "identity_kind": "features-standardised", "standardised_on": "train", "standardised_videos": 4,
        "standardised_frames": 30 + 36 + 33 + 38}
    train_rows = load_embeddings(embed(tmp_path / "z", toy_features, splits=("train",),
                                       identity="features-standardised", progress=False)).videos
    stacked = np.concatenate([v.embeddings for v in train_rows]).astype(np.float64)
    assert np.allclose(stacked.mean(axis=0), 0.0, atol=1e-5) and np.allclose(stacked.std(axis=0), 1.0, atol=1e-4)


def test_standardising_a_constant_dimension_divides_by_the_floor(tmp_path: Path) -> None:
    varied = np.arange(8.0)[:, None, None, None]
    train = np.concatenate([np.full((8, 1, 1, 1), 2.0), varied], axis=1)  # channel 0 constant on train
    val = np.concatenate([np.full((4, 1, 1, 1), 2.5), varied[:4]], axis=1)
    features = write_features(tmp_path / "cache" / "constantfeature0", {"t": ("train", train), "v": ("val", val)})
    data = load_embeddings(embed(tmp_path / "z", features, identity="features-standardised", progress=False))
    t, v = data.split("train")[0], data.split("val")[0]
    assert np.all(t.embeddings[:, 0] == 0.0) and np.allclose(v.embeddings[:, 0], 0.5 / SD_FLOOR)
    assert np.allclose(t.embeddings[:, 1], (np.arange(8) - 3.5) / np.arange(8.0).std(), atol=1e-6)
    assert data.attrs["standardised_sd_floor"] == SD_FLOOR
    only_val = write_features(tmp_path / "cache" / "onlyvalfeatures0", {"v": ("val", val)})
    with pytest.raises(VavaError, match="features-standardised takes its statistics from the train split, which has "
                                        "no complete video"):
        embed(tmp_path / "y", only_val, identity="features-standardised", progress=False)


def test_flags_reach_the_embeddings_file(toy_features: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = embed(tmp_path / "none", toy_features, splits=("val",), identity="time", progress=False)
    assert all(not v.flags.any() and v.flags.dtype == np.uint8 for v in load_embeddings(path).videos)  # zeros
    monkeypatch.setattr(FeatureSet, "flags", lambda self, video_id: np.arange(self.video(video_id).num_frames,
                                                                              dtype=np.uint8) % 8)
    path = embed(tmp_path / "flags", toy_features, splits=("val",), identity="time", progress=False)
    with h5py.File(path) as handle:
        assert handle["videos/toy2/flags"].dtype == np.uint8
        assert handle["videos/toy2/flags"][:].tolist() == [t % 8 for t in range(41)]


def test_embed_errors(toy_features: Path, tmp_path: Path) -> None:
    with pytest.raises(VavaError, match="^identity needs features "):
        embed(tmp_path / "r", identity="features", progress=False)
    with pytest.raises(VavaError, match="no checkpoint"):
        embed(tmp_path / "r", progress=False)
    with pytest.raises(VavaError, match="^splits: dev given; use a comma list of train, val, test"):
        embed(tmp_path / "r", toy_features, splits=("dev",), identity="features", progress=False)
    with pytest.raises(VavaError, match=r"no complete video in split\(s\) test$"):
        embed(tmp_path / "r", toy_features, splits=("test",), identity="features", progress=False)
    with pytest.raises(VavaError, match="^identity: 'frames' is not one of features, features-standardised, time"):
        embed(tmp_path / "r", toy_features, identity="frames", progress=False)


def test_a_model_of_some_actions_trains_and_embeds_only_those(toy_features: Path, tmp_path: Path) -> None:
    actions = sorted({v.action for v in FeatureSet.open(toy_features).videos()})
    run = tmp_path / "one-action"
    train(toy_features, run, load_config(None, parse_overrides([*TINY, f"data.actions=[{actions[0]}]"])),
          progress=False)
    embedded = load_embeddings(embed(run, progress=False))
    assert {v.action for v in embedded.videos} == {actions[0]}
    assert len(embedded.videos) == sum(v.action == actions[0] for v in FeatureSet.open(toy_features).videos())
    with pytest.raises(VavaError, match=r"^data.actions: .* has no train video of action 'nope' \(its actions: "):
        train(toy_features, tmp_path / "bad", load_config(None, parse_overrides([*TINY, "data.actions=[nope]"])),
              progress=False)


@pytest.mark.slow
def test_a_full_disk_is_one_line_and_keeps_the_old_embeddings(toy_features: Path, tmp_path: Path) -> None:
    """HDF5 failing to write mid-file used to crash the process (exit 139) and leave its temporary file.

    A file-size limit (RLIMIT_FSIZE; writes past it fail with EFBIG, as writes to a full disk fail with
    ENOSPC) stops the write at two points of the new file, each time in a fresh process."""
    import resource
    import subprocess
    import sys

    run = tmp_path / "run"
    old = embed(run, toy_features, identity="features", progress=False).read_bytes()
    files = sorted(p.name for p in run.iterdir())
    for limit in (1_000, len(old) // 2):
        result = subprocess.run(
            [sys.executable, "-m", "vava.pipeline.cli", "embed", "--run", str(run), "--identity",
             "--features", str(toy_features), "--quiet"],
            capture_output=True, text=True, timeout=120,
            preexec_fn=lambda limit=limit: resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit)))
        assert (result.returncode, result.stderr) == (
            1, f"Error: {run / 'embeddings.h5'}: cannot write (File too large); nothing was replaced\n"), limit
        assert sorted(p.name for p in run.iterdir()) == files  # no temporary file left
        assert (run / "embeddings.h5").read_bytes() == old


# -- issue 16, point 15 ----------------------------------------------------------------------------
def test_features_of_another_map_size_are_refused(trained: Path, tmp_path: Path) -> None:
    """The run was trained on 16x2x2 maps; 16x4x4 ones (another --image-size) would embed silently."""
    rng = np.random.default_rng(0)
    other = write_features(tmp_path / "cache" / "largermaps000000", {
        "a": ("train", rng.standard_normal((12, 16, 4, 4))), "b": ("val", rng.standard_normal((10, 16, 4, 4)))})
    with pytest.raises(VavaError, match=rf"^features: {re.escape(str(other))} holds 16x4x4 maps per frame, the run "
                                        r"was trained on 16x2x2 \(features of another image_size\); extract the "
                                        r"videos with the options of the run's feature set$"):
        embed(trained, other, progress=False)
    assert not (trained / "embeddings.h5").exists()


def test_an_identity_kind_into_a_trained_run_writes_a_tagged_file(trained: Path, toy_features: Path) -> None:
    own = embed(trained, progress=False)
    before = own.read_bytes()
    path = embed(trained, toy_features, identity="time", progress=False)
    assert path == trained / "embeddings-identity-time.h5"
    assert own.read_bytes() == before  # the embedder's embeddings are kept
    assert load_embeddings(path).attrs["identity_kind"] == "time"
    assert load_embeddings(own).attrs["embedder"] == "trained"
