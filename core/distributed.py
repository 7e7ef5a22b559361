"""Several processes under `torchrun`: which one this is, the process group, and splitting work between them.

`torchrun` sets RANK, WORLD_SIZE and LOCAL_RANK (and MASTER_ADDR/PORT) in every process it starts; a
plain `python`/`vava` call has none of them and is one process of a world of one, so every caller
can use these functions unconditionally.
"""
from __future__ import annotations

import contextlib
import datetime as dt
import heapq
import json
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import torch
import torch.distributed as dist

from vava.core.errors import VavaError

_ENVIRONMENT = ("RANK", "WORLD_SIZE", "LOCAL_RANK")
# How long ranks that split a stage's work (extract, embed) wait for each other: for rank 0's checks before the
# others start (`extract --repair` reads the whole cache) and for the slowest share at the end. A rank that dies
# ends the wait sooner: torchrun then stops the others.
SHARE_WAIT_S = 24 * 3600.0


@dataclass(frozen=True)
class Ranks:
    """This process's place among the processes of one job."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        """Rank 0: the one process that writes what all of them share (logs, checkpoints, summaries)."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world > 1


def current_ranks() -> Ranks:
    """The ranks `torchrun` gave this process (RANK, WORLD_SIZE, LOCAL_RANK), or a world of one without them."""
    values = {name: os.environ.get(name) for name in _ENVIRONMENT}
    if values["WORLD_SIZE"] is None:
        return Ranks()
    try:
        rank, world = int(values["RANK"] or 0), int(values["WORLD_SIZE"])
        local_rank = int(values["LOCAL_RANK"] or 0)
    except ValueError:
        raise VavaError(f"RANK, WORLD_SIZE and LOCAL_RANK must be integers, got {values} "
                        "(they are set by torchrun)") from None
    if world < 1 or not 0 <= rank < world or local_rank < 0:
        raise VavaError(f"RANK {rank} and WORLD_SIZE {world} do not describe a process of the job "
                        "(they are set by torchrun)")
    return Ranks(rank, world, local_rank)


def backend_for(device: torch.device) -> str:
    """`nccl` between GPUs, `gloo` between CPU processes."""
    return "nccl" if device.type == "cuda" else "gloo"


@contextlib.contextmanager
def process_group(device: torch.device, timeout_s: float = 1800.0) -> Iterator[Ranks]:
    """Join the job's process group for the duration of the block (nothing to join in a world of one).

    On a GPU each process takes the device of its LOCAL_RANK. `timeout_s` bounds how long a collective
    waits for a rank that died, so the others stop with an error rather than hang.
    """
    ranks = current_ranks()
    if not ranks.distributed or dist.is_initialized():
        yield ranks
        return
    if device.type == "cuda":
        torch.cuda.set_device(ranks.local_rank)
    dist.init_process_group(backend_for(device), timeout=dt.timedelta(seconds=timeout_s))
    try:
        yield ranks
    finally:
        dist.destroy_process_group()


def local_device(device: torch.device, ranks: Ranks) -> torch.device:
    """The device this rank works on: its own GPU (cuda:LOCAL_RANK) when several share a machine."""
    if device.type == "cuda" and ranks.distributed:
        return torch.device("cuda", ranks.local_rank)
    return device


def joined_world() -> int:
    """How many processes share the process group this process joined (1 when it joined none)."""
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def barrier() -> None:
    """Wait until every rank gets here (nothing to wait for in a world of one)."""
    if joined_world() > 1:
        dist.barrier()


def shard_by_weight(weights: Sequence[float], world: int) -> list[list[int]]:
    """Split items 0..n-1 into `world` shards of near-equal total weight (e.g. frames per video).

    Greedy longest-first: items in decreasing weight (ties by index) each go to the lightest shard so
    far (ties by rank), so every rank computes the same split. Each shard lists its items in index order.
    """
    if world < 1:
        raise ValueError(f"world must be at least 1, got {world}")
    loads = [(0.0, rank) for rank in range(world)]
    shards: list[list[int]] = [[] for _ in range(world)]
    for index in sorted(range(len(weights)), key=lambda i: (-weights[i], i)):
        load, rank = heapq.heappop(loads)
        shards[rank].append(index)
        heapq.heappush(loads, (load + weights[index], rank))
    return [sorted(shard) for shard in shards]


def _collective_device() -> torch.device:
    """Where a collective's tensors must live: the rank's GPU under `nccl`, the CPU under `gloo`."""
    if dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def _encoded(value: object, device: torch.device) -> torch.Tensor:
    return torch.frombuffer(bytearray(json.dumps(value).encode()), dtype=torch.uint8).to(device)


def broadcast_json(value: object) -> object:
    """Rank 0's `value` (any JSON value), on every rank; the other ranks' `value` is ignored.

    For decisions one rank makes for all (which videos each extracts), sent as JSON rather than pickled.
    """
    if joined_world() == 1:
        return value
    device = _collective_device()
    data = _encoded(value, device) if dist.get_rank() == 0 else None
    size = torch.tensor([0 if data is None else data.numel()], dtype=torch.int64, device=device)
    dist.broadcast(size, src=0)
    if data is None:
        data = torch.empty(int(size.item()), dtype=torch.uint8, device=device)
    dist.broadcast(data, src=0)
    return json.loads(data.cpu().numpy().tobytes())


def all_gather_json(value: object) -> list[object]:
    """Every rank's `value` (any JSON value), in rank order, on every rank."""
    if joined_world() == 1:
        return [value]
    device = _collective_device()
    data = _encoded(value, device)
    sizes = [torch.zeros(1, dtype=torch.int64, device=device) for _ in range(dist.get_world_size())]
    dist.all_gather(sizes, torch.tensor([data.numel()], dtype=torch.int64, device=device))
    longest = max(int(size.item()) for size in sizes)
    padded = torch.zeros(longest, dtype=torch.uint8, device=device)
    padded[: data.numel()] = data
    gathered = [torch.empty(longest, dtype=torch.uint8, device=device) for _ in sizes]
    dist.all_gather(gathered, padded)
    return [json.loads(part[: int(size.item())].cpu().numpy().tobytes()) for part, size in zip(gathered, sizes)]
