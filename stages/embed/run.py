"""`vava embed`: per-frame embeddings of every video of a feature set, written to HDF5.

File layout (readable with plain h5py)::

    /videos/<id>/embeddings  (T, D) float32
    /videos/<id>/labels      (T,)   int64
    /videos/<id>/frame_index (T,)   int64     frame of the decoded video each row belongs to
    group attrs: id, split, action, fps, phases, background_label (-1 = none)
    file attrs:  run, embedder ("trained" | "identity"), checkpoint, step, objective, feature_set,
                 fingerprint, splits, created (run, checkpoint and feature_set as absolute paths)
"""
from __future__ import annotations

import datetime as dt
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import torch
from tqdm import tqdm

from cache.inspect import require_complete
from cache.store import CachedVideo, FeatureSet
from pipeline.devices import resolve_device
from pipeline.errors import VavaError
from pipeline.files import atomic_path
from pipeline.runs import locked_run
from stages.train.checkpoint import LAST, load_checkpoint, load_into
from stages.train.embedder import Embedder, context_indices

EMBEDDINGS_NAME = "embeddings.h5"
SPLITS = ("train", "val")


@dataclass(frozen=True)
class TrainedEmbedder:
    """A run's trained embedder (in eval mode) and the feature set it embeds."""

    checkpoint: dict[str, Any]  # as `load_checkpoint` returns it
    feature_set: FeatureSet
    embedder: Embedder

    @property
    def context(self) -> tuple[int, int]:
        model = self.checkpoint["config"].model
        return model.context_frames, model.context_stride


def load_trained(run_dir: str | Path, features: str | Path | None, device: torch.device) -> TrainedEmbedder:
    """The embedder of a run's last checkpoint, on `features` (default: the feature set it was trained on)."""
    state = load_checkpoint(Path(run_dir) / "checkpoints" / LAST)
    try:
        feature_set = FeatureSet.open(features if features is not None else state["features"])
    except VavaError as err:
        if features is not None:
            raise
        raise VavaError(f"{err} (the feature set the run was trained on; pass --features if it moved)") from None
    videos = feature_set.videos()
    if videos and feature_set.frame_shape(videos[0].id)[0] != state["in_channels"]:
        raise VavaError(f"--features: {feature_set.path} has {feature_set.frame_shape(videos[0].id)[0]} channels, "
                        f"the run was trained on {state['in_channels']}")
    embedder = Embedder(state["in_channels"], state["config"].model)
    load_into(embedder, state["embedder"], state["path"], "embedder")
    return TrainedEmbedder(state, feature_set, embedder.to(device).eval())


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
            trained = load_trained(run_dir, features, torch_device)
            feature_set, embed_maps, context = trained.feature_set, trained.embedder, trained.context
            state = trained.checkpoint
            attrs = {"embedder": "trained", "checkpoint": str(state["path"].resolve()), "step": state["step"],
                     "objective": state["config"].objective}
        require_complete(feature_set, allow_partial)
        videos = [v for v in feature_set.videos() if v.split in splits]
        if not videos:
            raise VavaError(f"{feature_set.path}: no complete video in split(s) {', '.join(splits)}")
        path = run_dir / EMBEDDINGS_NAME
        with atomic_path(path) as tmp, h5py.File(tmp, "w") as handle:
            handle.attrs.update({**attrs, "run": str(run_dir.resolve()), "feature_set": str(feature_set.path.resolve()),
                                 "fingerprint": feature_set.fingerprint, "splits": ",".join(splits),
                                 "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")})
            for video in tqdm(videos, unit="video", desc="embed", file=sys.stderr, disable=not progress):
                rows = embed_video(feature_set, video, embed_maps, context, chunk_frames, torch_device)
                _write_video(handle, feature_set, video, rows)
    return path


@torch.inference_mode()
def embed_video(feature_set: FeatureSet, video: CachedVideo, embed_maps: Callable[[torch.Tensor], torch.Tensor],
                context: tuple[int, int], chunk_frames: int, device: torch.device) -> np.ndarray:
    """(T, D) float32 embeddings of every frame, computed `chunk_frames` at a time.

    Each chunk reads only the frames it needs: its own and their past context frames.
    """
    rows = []
    for start in range(0, video.num_frames, chunk_frames):
        stop = min(start + chunk_frames, video.num_frames)
        stacks = context_indices(torch.arange(start, stop), *context)  # [n, K]
        first = int(stacks.min())
        maps = torch.from_numpy(feature_set.read(video.id, slice(first, stop))).to(device)
        embedded = embed_maps(maps[stacks - first].float())
        if not torch.isfinite(embedded).all():
            raise VavaError(f"video {video.id!r}: non-finite embeddings in frames {start}..{stop - 1}")
        rows.append(embedded.float().cpu().numpy())
    return np.concatenate(rows)


def _pooled(maps: torch.Tensor) -> torch.Tensor:
    """[n, 1, C, H, W] -> [n, C]: global average pooling of each frame's own maps."""
    return maps[:, -1].mean(dim=(-2, -1))


def _write_video(handle: h5py.File, feature_set: FeatureSet, video: CachedVideo, rows: np.ndarray) -> None:
    group = handle.create_group(f"videos/{video.id}")
    group.create_dataset("embeddings", data=rows.astype(np.float32))
    group.create_dataset("labels", data=feature_set.labels(video.id))
    group.create_dataset("frame_index", data=feature_set.frame_index(video.id))
    group.attrs.update({"id": video.id, "split": video.split, "action": video.action, "fps": video.fps or 0.0,
                        "phases": list(video.phases),
                        "background_label": -1 if video.background_label is None else video.background_label})
