"""`vava embed`: per-frame embeddings of every video of a feature set, written to RUN/embeddings.h5.

The file's layout is `vava.core.embeddings_file`'s; the trained embedder comes from the run folder
(`vava.core.run_folder.load_embedder`).
"""
from __future__ import annotations

import sys
from pathlib import Path

import torch
from tqdm import tqdm

from vava.cache.inspect import require_complete
from vava.cache.store import FeatureSet, open_run_features
from vava.core.devices import resolve_device
from vava.core.embedder import embed_video
from vava.core.embeddings_file import EMBEDDINGS_NAME, EmbeddingsWriter
from vava.core.errors import VavaError
from vava.core.records import SPLITS
from vava.core.run_folder import load_embedder, locked_run


def embed(run_dir: str | Path, features: str | Path | None = None, splits: tuple[str, ...] = SPLITS,
          identity: bool = False, device: str = "auto", chunk_frames: int = 256, progress: bool = True,
          allow_partial: bool = False) -> Path:
    """Embed every frame (stride 1) of the videos of `splits`; return the path of embeddings.h5.

    With `identity`, frames are embedded by global average pooling of their backbone maps (the
    "ImageNet features" / "random features" rows); `features` is then required. Otherwise the
    run's last checkpoint is used, on the feature set it was trained on unless `features` is given.
    The run folder is locked while embedding (so never while `vava train` writes to it).
    """
    unknown = sorted(set(splits) - set(SPLITS))
    if unknown or not splits:
        raise VavaError(f"--splits: {','.join(unknown) or 'nothing'} given; use a comma list of {', '.join(SPLITS)}")
    if chunk_frames < 1:
        raise VavaError("--batch-frames: must be at least 1")
    if identity and features is None:
        raise VavaError("--identity needs --features (there is no trained run to take them from)")
    torch_device = resolve_device(device)
    with locked_run(run_dir, "--run", create=identity) as run_dir:
        if identity:
            feature_set = FeatureSet.open(features)
            embed_maps, context = _pooled, (0, 1)
            attrs = {"embedder": "identity", "checkpoint": "", "step": 0, "objective": "none"}
        else:
            trained = load_embedder(run_dir)
            feature_set = open_run_features(features, trained.features)
            trained.check_channels(feature_set.channels(), feature_set.path)
            embed_maps, context = trained.build(torch_device), trained.context
            state = trained.checkpoint
            attrs = {"embedder": "trained", "checkpoint": str(state["path"].resolve()), "step": state["step"],
                     "objective": state["config"].get("objective", "unknown")}
        require_complete(feature_set, allow_partial)
        videos = [v for v in feature_set.videos() if v.split in splits]
        if not videos:
            raise VavaError(f"{feature_set.path}: no complete video in split(s) {', '.join(splits)}")
        attrs.update({"run": str(run_dir.resolve()), "feature_set": str(feature_set.path.resolve()),
                      "fingerprint": feature_set.fingerprint, "splits": ",".join(splits)})
        with EmbeddingsWriter(run_dir / EMBEDDINGS_NAME, attrs) as writer:
            for video in tqdm(videos, unit="video", desc="embed", file=sys.stderr, disable=not progress):
                rows = embed_video(feature_set, video, embed_maps, context, chunk_frames, torch_device)
                writer.add(video, rows, feature_set.labels(video.id), feature_set.frame_index(video.id))
    return writer.path


def _pooled(maps: torch.Tensor) -> torch.Tensor:
    """[n, 1, C, H, W] -> [n, C]: global average pooling of each frame's own maps."""
    return maps[:, -1].mean(dim=(-2, -1))
