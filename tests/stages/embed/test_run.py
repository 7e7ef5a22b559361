"""`embed`: HDF5 layout, values equal the embedder applied by hand, chunking, identity mode."""
from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from vava.cache.store import FeatureSet
from vava.core.config import parse_overrides
from vava.core.embedder import Embedder, context_indices
from vava.core.errors import VavaError
from vava.core.run_folder import load_checkpoint
from vava.stages.embed.run import embed
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


def test_chunking_does_not_change_embeddings(trained: Path) -> None:
    whole = embed(trained, progress=False)
    with h5py.File(whole) as handle:
        reference = {k: handle[f"videos/{k}/embeddings"][:] for k in handle["videos"]}
    embed(trained, chunk_frames=3, progress=False)  # chunks shorter than the context stride
    with h5py.File(whole) as handle:
        assert all(np.allclose(handle[f"videos/{k}/embeddings"][:], v, atol=1e-6) for k, v in reference.items())


def test_identity_embeds_pooled_features_of_chosen_splits(toy_features: Path, tmp_path: Path) -> None:
    path = embed(tmp_path / "random-features", toy_features, splits=("val",), identity=True, progress=False)
    fs = FeatureSet.open(toy_features)
    with h5py.File(path) as handle:
        assert handle.attrs["embedder"] == "identity" and sorted(handle["videos"]) == ["toy2", "toy5"]
        rows = handle["videos/toy5/embeddings"][:]
    assert np.allclose(rows, fs.read("toy5").astype(np.float32).mean(axis=(2, 3)), atol=1e-6)


def test_embed_errors(toy_features: Path, tmp_path: Path) -> None:
    with pytest.raises(VavaError, match="--identity needs --features"):
        embed(tmp_path / "r", identity=True, progress=False)
    with pytest.raises(VavaError, match="no checkpoint"):
        embed(tmp_path / "r", progress=False)
    with pytest.raises(VavaError, match="--splits: test given"):
        embed(tmp_path / "r", toy_features, splits=("test",), identity=True, progress=False)
