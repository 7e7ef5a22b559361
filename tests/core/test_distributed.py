"""Ranks from torchrun's environment and the frame-balanced split of videos between ranks."""
from __future__ import annotations

import pytest
import torch
import torch.distributed as dist

from vava.core.distributed import (
    Ranks,
    all_gather_json,
    backend_for,
    broadcast_json,
    current_ranks,
    local_device,
    shard_by_weight,
)
from vava.core.errors import VavaError


def test_without_torchrun_a_world_of_one(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(name, raising=False)
    assert current_ranks() == Ranks(0, 1, 0)
    assert current_ranks().is_main and not current_ranks().distributed


def test_ranks_from_torchrun_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RANK", "3")
    monkeypatch.setenv("WORLD_SIZE", "4")
    monkeypatch.setenv("LOCAL_RANK", "1")
    ranks = current_ranks()
    assert ranks == Ranks(3, 4, 1) and ranks.distributed and not ranks.is_main
    assert local_device(torch.device("cuda"), ranks) == torch.device("cuda", 1)
    assert local_device(torch.device("cpu"), ranks) == torch.device("cpu")


@pytest.mark.parametrize(("rank", "world"), [("4", "4"), ("-1", "2"), ("x", "2"), ("0", "0")])
def test_inconsistent_environment_is_one_line(monkeypatch: pytest.MonkeyPatch, rank: str, world: str) -> None:
    monkeypatch.setenv("RANK", rank)
    monkeypatch.setenv("WORLD_SIZE", world)
    monkeypatch.setenv("LOCAL_RANK", "0")
    with pytest.raises(VavaError, match="torchrun"):
        current_ranks()


def test_backend() -> None:
    assert backend_for(torch.device("cpu")) == "gloo"
    assert backend_for(torch.device("cuda", 0)) == "nccl"


def test_shard_by_weight_hand_computed() -> None:
    # longest first: 9 -> r0, 7 -> r1, 5 -> r1 (7 < 9), 4 -> r0 (9 < 12), 2 -> r1 (12 < 13)
    weights = [4, 9, 2, 7, 5]
    assert shard_by_weight(weights, 2) == [[0, 1], [2, 3, 4]]
    assert [sum(weights[i] for i in shard) for shard in shard_by_weight(weights, 2)] == [13, 14]
    # equal loads go to the lower rank
    assert shard_by_weight([1, 1, 1, 1], 2) == [[0, 2], [1, 3]]


def test_shard_by_weight_covers_every_item_once() -> None:
    weights = [float(w) for w in torch.randint(1, 500, (101,), generator=torch.Generator().manual_seed(0))]
    shards = shard_by_weight(weights, 4)
    assert sorted(i for shard in shards for i in shard) == list(range(101))
    loads = [sum(weights[i] for i in shard) for shard in shards]
    assert max(loads) - min(loads) <= max(weights)  # greedy longest-first bound
    assert shard_by_weight(weights, 1) == [list(range(101))]
    assert shard_by_weight([3.0], 3) == [[0], [], []]
    with pytest.raises(ValueError, match="world"):
        shard_by_weight(weights, 0)


VALUE = {"shards": [["v1", "v10"], []], "frames": 3, "seconds": 0.25, "name": "caf\u00e9 \u2713"}


def test_json_without_a_process_group_is_the_value_itself() -> None:
    assert not dist.is_initialized()
    assert broadcast_json(VALUE) is VALUE
    assert all_gather_json(VALUE) == [VALUE]


def test_json_round_trips_through_a_gloo_group() -> None:
    """A world of one in this process: the values travel through the collectives (the torchrun tests of
    extract and embed run them between two processes)."""
    dist.init_process_group("gloo", store=dist.HashStore(), rank=0, world_size=1)
    try:
        assert broadcast_json(VALUE) == VALUE
        assert all_gather_json(VALUE) == [VALUE]
        assert all_gather_json([]) == [[]]
    finally:
        dist.destroy_process_group()
