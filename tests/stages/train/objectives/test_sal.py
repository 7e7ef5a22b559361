"""Shuffle and Learn (docs/method.md#sal): reference value and the triplet sampler."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from tests.stages.train.objectives.reference import E, assert_rel
from vava.stages.train.objectives.sal import SalLoss, SalSample, sample_triplets, triplet_logits

# ---------------------------------------------------------------- SaL and supervised (docs/method.md#sal, #supervised)


def test_sal_reference_value() -> None:
    triplets = torch.tensor([[12, 6, 18], [12, 16, 17], [9, 11, 14], [5, 3, 10], [9, 19, 14], [8, 18, 14],
                             [3, 2, 12], [4, 6, 8]])
    labels = torch.tensor([1, 0, 0, 1, 1, 1, 1, 0])
    torch.manual_seed(0)
    objective = SalLoss()
    logits = triplet_logits(objective.head, E[:2], SalSample(torch.arange(8) % 2, triplets, labels))
    assert_rel(F.cross_entropy(logits, labels), 0.723942)
    assert sum(p.numel() for p in objective.parameters()) == 384 * 128 + 128 + 128 * 64 + 64 + 64 * 2 + 2


def test_sal_sampler_invariants() -> None:
    g = torch.Generator().manual_seed(11)
    directions = set()
    for videos, frames in ((2, 20), (8, 20), (3, 5), (4, 40)):
        for _ in range(25):
            sample = sample_triplets(videos, frames, 8, 0.75, g)
            rows = videos * 8
            assert int(sample.labels.sum()) == int(0.75 * rows)
            assert torch.equal(sample.video, torch.arange(rows) % videos)
            first, middle, last = sample.triplets.unbind(-1)
            assert bool((sample.triplets >= 0).all()) and bool((sample.triplets < frames).all())
            ordered = sample.labels == 0
            ascending = (first < middle) & (middle < last)
            descending = (first > middle) & (middle > last)
            assert bool(ascending[ordered].all()) or bool(descending[ordered].all())
            direction = bool((first < last).all())
            assert bool(((first < last) == direction).all())  # one coin for the batch
            directions.add(direction)
            low, high = torch.minimum(first, last), torch.maximum(first, last)
            shuffled = ~ordered
            assert bool(((middle[shuffled] < low[shuffled]) | (middle[shuffled] > high[shuffled])).all())
    assert directions == {True, False}
    with pytest.raises(ValueError, match="at least 5"):
        sample_triplets(2, 4, 8, 0.75)
