"""Which videos and frames each training step sees.

Every step is drawn from its own generator seeded with (seed, step), so a resumed run sees exactly
the batches an uninterrupted one would, whichever data path or worker produces them. Under torchrun
every rank draws the same global batch and keeps its own consecutive block of its pairs, so the ranks'
parts, in rank order, are exactly the single-process draw.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import numpy as np

from vava.cache.store import CachedVideo
from vava.core.distributed import Ranks
from vava.core.errors import VavaError


def offset_uniform(length: int, count: int, rng: np.random.Generator, offset: int = 1) -> np.ndarray:
    """`count` sorted frame indices of a video of `length` frames (TCC's offset_uniform).

    Distinct indices drawn uniformly from [offset, length) when there are enough frames;
    otherwise 0, 1, ..., count-1 clipped to the last frame.
    """
    if count <= length - offset:
        return np.sort(rng.choice(np.arange(offset, length), size=count, replace=False))
    return np.minimum(np.arange(count), length - 1)


@dataclass(frozen=True)
class PairDraw:
    """The videos (ids [B, 2]) and sampled frame indices ([B, 2, T]) of one step."""

    video_ids: list[tuple[str, str]]
    frame_indices: np.ndarray

    def part(self, rank: int, world: int) -> PairDraw:
        """Rank `rank`'s block of pairs among `world` equal consecutive blocks (the pair count divides by `world`)."""
        size = len(self.video_ids) // world
        block = slice(rank * size, (rank + 1) * size)
        return PairDraw(self.video_ids[block], self.frame_indices[block])


class PairSampler:
    """Pairs of different videos of the same action: the first drawn uniformly over all videos,
    its partner uniformly over the other videos of its action.

    Every action needs at least two videos: a video paired with itself is a trivial alignment
    that would silently stand in for a real pair, so a lone video is refused by name. `pairs` is the
    global batch: with several `ranks`, `draw` gives this rank's `pairs / world` of them.
    """

    def __init__(self, videos: list[CachedVideo], pairs: int, frames: int, seed: int,
                 ranks: Ranks | None = None):
        ranks = ranks or Ranks()
        if pairs % ranks.world:
            raise VavaError(f"data.batch_pairs: {pairs} pairs per step do not split evenly between {ranks.world} "
                            f"processes; make it a multiple of {ranks.world} (it is the global batch, whatever "
                            "the number of processes)")
        if not videos:
            raise VavaError("no training videos: the feature set has no complete video in the train split")
        self.videos = {v.id: v for v in videos}
        self.ids = sorted(self.videos)
        by_action: dict[str, list[str]] = defaultdict(list)
        for video_id in self.ids:
            by_action[self.videos[video_id].action].append(video_id)
        self.by_action = dict(by_action)
        alone = {action: ids[0] for action, ids in self.by_action.items() if len(ids) == 1}
        if alone:
            named = ", ".join(f"{action!r} (only {video!r})" for action, video in sorted(alone.items())[:5])
            named += f" and {len(alone) - 5} more" if len(alone) > 5 else ""
            raise VavaError(f"no pair of distinct train videos for action(s) {named}: training pairs two videos of "
                            f"an action; give each action at least 2 train videos (split 'train' in the dataset)")
        self.pairs, self.frames, self.seed, self.ranks = pairs, frames, seed, ranks

    def draw(self, step: int) -> PairDraw:
        """This rank's part of step `step`'s pairs (all of them in a world of one)."""
        whole = self.draw_all(step)
        return whole.part(self.ranks.rank, self.ranks.world) if self.ranks.distributed else whole

    def draw_all(self, step: int) -> PairDraw:
        """Every pair of step `step`, the same on every rank."""
        rng = np.random.default_rng([self.seed, step])
        pairs = []
        for first in rng.choice(self.ids, size=self.pairs):
            partners = [v for v in self.by_action[self.videos[first].action] if v != first]
            pairs.append((str(first), str(partners[rng.integers(len(partners))])))
        indices = np.stack([np.stack([offset_uniform(self.videos[v].num_frames, self.frames, rng) for v in pair])
                            for pair in pairs])
        return PairDraw(pairs, indices)
