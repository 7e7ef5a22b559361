"""Which rank of a `torchrun` job extracts which video: shards of near-equal frame counts."""
from __future__ import annotations

from vava.core.distributed import shard_by_weight
from vava.core.errors import VavaError
from vava.core.records import VideoRecord
from vava.core.videoio import kept_frames


def plan_shards(pending: list[VideoRecord], world: int, target_fps: float | None) -> list[list[str]]:
    """The ids of `pending` split into `world` shards balanced by the frames each video caches.

    Every id lands in exactly one shard. A world of one needs no counting (and probes no file). A video
    that cannot be probed weighs 1: some rank still takes it, and its decode reports what is wrong.
    """
    if world == 1:
        return [[record.id for record in pending]]
    weights = []
    for record in pending:
        try:
            weights.append(max(kept_frames(record, target_fps), 1))
        except VavaError:
            weights.append(1)
    return [[pending[i].id for i in shard] for shard in shard_by_weight(weights, world)]
