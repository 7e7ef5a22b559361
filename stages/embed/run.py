"""`vava embed`: per-frame embeddings of every video of a feature set, written to RUN/embeddings.h5
(embeddings-<tag>.h5 for a checkpoint other than the last: `vava.core.run_folder.checkpoint_tag`, and
embeddings-identity-<kind>.h5 for an identity kind written into a trained run).

The file's layout is `vava.core.embeddings_file`'s; the trained embedder comes from the run folder
(`vava.core.run_folder.load_embedder`). Identity kinds (no training; docs/evaluation.md#reference-rows):

- features: global average pooling of each frame's backbone maps;
- features-standardised: the same, each dimension z-scored with the mean and sd (ddof 0) over every
  frame of the feature set's train split, the sd raised to at least SD_FLOOR;
- time: one dimension, t / T for stored frame t = 0..T-1 of a video of T stored frames.
"""
from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from vava.cache.inspect import require_complete
from vava.cache.store import CachedVideo, FeatureSet, open_run_features
from vava.core.devices import resolve_device
from vava.core.distributed import SHARE_WAIT_S, current_ranks, local_device, process_group
from vava.core.embedder import NO_CONTEXT, EmbedderConfig, embed_video
from vava.core.embeddings_file import EMBEDDINGS_NAME, IDENTITY_KINDS, EmbeddingsWriter, time_only
from vava.core.errors import VavaError, option_name
from vava.core.records import SPLITS
from vava.core.run_folder import (
    RUN_INFO_NAME,
    checkpoint_tag,
    identity_tag,
    load_embedder,
    tagged_name,
)
from vava.stages.embed.sharded import shared_run, write_sharded

SD_FLOOR = 1e-6  # a dimension constant over the train frames is centred, not divided by 0

Embed = Callable[[CachedVideo], np.ndarray]  # a video's (T, D) embeddings


def embed(run_dir: str | Path, features: str | Path | None = None, splits: tuple[str, ...] = SPLITS,
          identity: str | bool | None = None, device: str = "auto", chunk_frames: int = 256, progress: bool = True,
          allow_partial: bool = False, checkpoint: str = "last") -> Path:
    """Embed every frame (stride 1) of the videos of `splits`; return the path of the embeddings file.

    With `identity` (a kind of IDENTITY_KINDS, see the module docstring; True is "features") no
    trained embedder is used and `features` is required. Otherwise the run's `checkpoint` is used (last,
    best, a step or a file: `vava.core.run_folder.find_checkpoint`), on the feature set it was trained
    on unless `features` is given, and only the videos of the actions it was trained on when its config
    names some (`data.actions`). The file is embeddings.h5 for the last checkpoint, else it carries the
    checkpoint's tag (embeddings-best.h5); identity embeddings into a trained run go to
    embeddings-identity-<kind>.h5. The run folder is locked while embedding (so never while `vava train`
    writes to it). Under `torchrun` the ranks share the videos and rank 0 writes the same file
    (`vava.stages.embed.sharded`).
    """
    unknown = sorted(set(splits) - set(SPLITS))
    if unknown or not splits:
        raise VavaError(f"{option_name('splits')}: {','.join(unknown) or 'nothing'} given; use a comma list of "
                        f"{', '.join(SPLITS)}")
    if chunk_frames < 1:
        raise VavaError(f"{option_name('batch_frames')}: must be at least 1")
    if isinstance(identity, bool):
        identity = "features" if identity else None
    if identity is not None and identity not in IDENTITY_KINDS:
        raise VavaError(f"{option_name('identity')}: {identity!r} is not one of {', '.join(IDENTITY_KINDS)}")
    if identity is not None and features is None:
        raise VavaError(f"{option_name('identity')} needs {option_name('features')} (there is no trained run to take "
                        "them from)")
    if identity is not None and checkpoint != "last":
        raise VavaError(f"{option_name('identity')} embeds without a trained embedder; it takes no "
                        f"{option_name('checkpoint')}")
    torch_device = local_device(resolve_device(device), current_ranks())
    with (process_group(torch_device, timeout_s=SHARE_WAIT_S) as ranks,
          shared_run(run_dir, ranks, create=identity is not None) as run_dir):
        if identity is not None:
            feature_set = FeatureSet.open(features)
            require_complete(feature_set, allow_partial)
            embed_one, attrs = _identity(feature_set, identity, chunk_frames, torch_device)
        else:
            trained = load_embedder(run_dir, checkpoint)
            feature_set = open_run_features(features, trained.features)
            trained.check_maps(feature_set.map_shape(), feature_set.path)
            require_complete(feature_set, allow_partial)
            embed_one = on_maps(feature_set, trained.build(torch_device), trained.model, chunk_frames, torch_device)
            state = trained.checkpoint
            attrs = {"embedder": "trained", "checkpoint": str(state["path"].resolve()), "step": state["step"],
                     "objective": state["config"].get("objective", "unknown")}
        videos = [v for v in feature_set.videos() if v.split in splits]
        if identity is None and (actions := trained.checkpoint["config"].get("data", {}).get("actions")):
            videos = [v for v in videos if v.action in actions]  # a model of some actions embeds only those
        if not videos:
            raise VavaError(f"{feature_set.path}: no complete video in split(s) {', '.join(splits)}")
        attrs.update({"run": str(run_dir.resolve()), "splits": ",".join(splits)})
        trained_run = (run_dir / RUN_INFO_NAME).is_file()  # its embeddings.h5 is its embedder's: never replaced
        tag = identity_tag(identity) if identity is not None and trained_run else checkpoint_tag(checkpoint)
        out = run_dir / tagged_name(EMBEDDINGS_NAME, tag)
        if not ranks.distributed:
            return write_embeddings(out, feature_set, videos, embed_one, attrs, progress)
        return write_sharded(out, feature_set, videos, lambda path, share: write_embeddings(
            path, feature_set, share, embed_one, attrs, progress and ranks.is_main), ranks)


def write_embeddings(path: Path, feature_set: FeatureSet, videos: list[CachedVideo], embed_one: Embed,
                     attrs: dict[str, object], progress: bool = False) -> Path:
    """Write the embeddings of `videos` (of `feature_set`) by `embed_one` into the embeddings file `path`.

    `attrs` describe the embedder and the splits (see `vava.core.embeddings_file`); the feature set's are added.
    """
    attrs = {**attrs, "feature_set": str(feature_set.path.resolve()), "fingerprint": feature_set.fingerprint}
    with EmbeddingsWriter(path, attrs) as writer:
        for video in tqdm(videos, unit="video", desc="embed", file=sys.stderr, disable=not progress):
            writer.add(video, embed_one(video), feature_set.labels(video.id), feature_set.frame_index(video.id),
                       feature_set.flags(video.id))
    return writer.path


def _identity(feature_set: FeatureSet, kind: str, chunk_frames: int,
              device: torch.device) -> tuple[Embed, dict[str, object]]:
    """The embedding of an identity kind, and the file attrs that describe it."""
    attrs: dict[str, object] = {"embedder": "identity", "checkpoint": "", "step": 0, "objective": "none",
                                "identity_kind": kind}
    if kind == "time":
        return lambda video: time_only(video.num_frames), attrs
    pooled = on_maps(feature_set, _pooled, NO_CONTEXT, chunk_frames, device)
    if kind == "features":
        return pooled, attrs
    mean, sd, source = _train_statistics(feature_set, pooled)
    return lambda video: ((pooled(video) - mean) / sd).astype(np.float32), {**attrs, **source}


def on_maps(feature_set: FeatureSet, embed_maps: Callable[[torch.Tensor], torch.Tensor], model: EmbedderConfig,
            chunk_frames: int, device: torch.device) -> Embed:
    """A video's embeddings by `embed_maps` on its cached maps with the context `model` stacks, a chunk at a time."""
    return lambda video: embed_video(feature_set, video, embed_maps, model, chunk_frames, device)


def _train_statistics(feature_set: FeatureSet, pooled: Embed) -> tuple[np.ndarray, np.ndarray, dict[str, object]]:
    """Per dimension, the mean and floored sd (ddof 0) of every train frame, and their source as file attrs.

    Videos are reduced one at a time to (frames, mean, sum of squared deviations), then combined
    exactly (Chan et al.'s pairwise update), so no split is ever held in memory at once.
    """
    train = [v for v in feature_set.videos() if v.split == "train"]
    if not train:
        raise VavaError(f"{feature_set.path}: {option_name('identity')} features-standardised takes its statistics "
                        "from the train split, which has no complete video")
    counts, means, squares = [], [], []
    for video in train:
        x = pooled(video).astype(np.float64)
        counts.append(x.shape[0])
        means.append(x.mean(axis=0))
        squares.append(((x - means[-1]) ** 2).sum(axis=0))
    counts, means = np.asarray(counts, dtype=np.float64)[:, None], np.stack(means)
    total = counts.sum()
    mean = (counts * means).sum(axis=0) / total
    spread = np.stack(squares).sum(axis=0) + (counts * (means - mean) ** 2).sum(axis=0)
    sd = np.maximum(np.sqrt(spread / total), SD_FLOOR)
    source = {"standardised_on": "train", "standardised_videos": len(train), "standardised_frames": int(total),
              "standardised_sd_floor": SD_FLOOR}
    return mean, sd, source


def _pooled(maps: torch.Tensor) -> torch.Tensor:
    """[n, 1, C, H, W] -> [n, C]: global average pooling of each frame's own maps."""
    return maps[:, -1].mean(dim=(-2, -1))
