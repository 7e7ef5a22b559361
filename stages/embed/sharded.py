"""`vava embed` under `torchrun`: the ranks share the videos, rank 0 writes the one embeddings file.

Rank 0 holds the run folder's lock for the whole job and splits the videos by frame count; each rank
writes its share into a part file beside the embeddings file (`vava.core.embeddings_file.part_path`);
once all are written, rank 0 copies them, in the order one process writes, into the embeddings file
(create-and-rename) and deletes every part file. A job that dies leaves the old file as it was and
its part files to the next run, which writes them anew.
"""
from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path

import h5py

from vava.cache.store import CachedVideo, FeatureSet
from vava.core.distributed import Ranks, barrier, broadcast_json, shard_by_weight
from vava.core.embeddings_file import EmbeddingsWriter, part_path, part_paths
from vava.core.run_folder import check_run_folder, locked_run

Write = Callable[[Path, list[CachedVideo]], Path]  # writes the embeddings file of some videos at a path


@contextlib.contextmanager
def shared_run(run_dir: str | Path, ranks: Ranks, *, create: bool) -> Iterator[Path]:
    """The run folder for the block, locked by rank 0 (`locked_run`); the other ranks go on once it holds it."""
    if ranks.is_main:
        with locked_run(run_dir, "run", create=create) as run_dir:
            barrier()
            yield run_dir
    else:
        barrier()
        yield check_run_folder(run_dir, "run")


def write_sharded(path: Path, feature_set: FeatureSet, videos: list[CachedVideo], write: Write, ranks: Ranks) -> Path:
    """The embeddings file of `videos` at `path` as `write(path, videos)` makes it, the videos shared by the ranks.

    `write(target, share)` writes the embeddings file of `share` at `target`; each rank writes its part by it,
    and rank 0 merges them into `path` (see the module docstring).
    """
    plan = None
    if ranks.is_main:
        shards = shard_by_weight([video.num_frames for video in videos], ranks.world)
        plan = {"order": [video.id for video in videos], "shards": [[videos[i].id for i in s] for s in shards]}
    plan = broadcast_json(plan)
    write(part_path(path, ranks.rank), [feature_set.video(video_id) for video_id in plan["shards"][ranks.rank]])
    barrier()
    if ranks.is_main:
        owner = {video_id: rank for rank, shard in enumerate(plan["shards"]) for video_id in shard}
        with contextlib.ExitStack() as stack:
            parts = [stack.enter_context(h5py.File(part_path(path, rank), "r")) for rank in range(ranks.world)]
            with EmbeddingsWriter(path, dict(parts[0].attrs)) as merged:
                for video_id in plan["order"]:
                    merged.copy_video(parts[owner[video_id]], video_id)
        for part in part_paths(path):
            part.unlink()
    return path
