"""Training under torchrun: rows gathered across ranks with gradients, BatchNorm over the global batch, and
one outcome for all ranks.

The ranks split each step's pairs; each embeds its own up to the pooled convolution features (the costly
part), then the pooled rows are gathered and every rank runs the fully connected head and the objective on
the whole global batch, with the same random state. The gather's backward sums the ranks' gradients
(every rank's loss is the global loss), and DistributedDataParallel averages the parameter gradients, so
the update is the single-process one up to float rounding, for every objective.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import torch
import torch.distributed as dist
from torch import Tensor, nn

from vava.core.distributed import all_gather_json, joined_world
from vava.core.errors import VavaError

T = TypeVar("T")


class _GatherRows(torch.autograd.Function):
    """Every rank's rows, concatenated in rank order; backward: the sum of the ranks' gradients of this rank's
    rows (each rank's loss is computed from all the rows)."""

    @staticmethod
    def forward(ctx: Any, rows: Tensor) -> Tensor:  # type: ignore[override]
        parts = [torch.empty_like(rows) for _ in range(dist.get_world_size())]
        dist.all_gather(parts, rows.contiguous())
        ctx.block = slice(dist.get_rank() * rows.shape[0], (dist.get_rank() + 1) * rows.shape[0])
        return torch.cat(parts)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> Tensor:  # type: ignore[override]
        grad = grad.contiguous().clone()
        dist.all_reduce(grad)
        return grad[ctx.block]


def gather_rows(rows: Tensor) -> Tensor:
    """The rows of every rank (the same number on each), in rank order; `rows` itself in a world of one."""
    return _GatherRows.apply(rows) if joined_world() > 1 else rows


class GlobalBatchNorm(nn.BatchNorm3d):
    """BatchNorm3d whose training statistics are those of the global batch, all ranks' rows together.

    Each rank holds an equal share of the batch, so the global mean is the mean of the ranks' means and the
    global variance the mean of their variances plus the spread of their means. torch's SyncBatchNorm does
    the same on GPUs only; this one also runs between CPU processes (gloo). Its parameters and buffers are
    BatchNorm3d's, so checkpoints do not change.
    """

    def forward(self, x: Tensor) -> Tensor:
        world = joined_world()
        if not self.training or world == 1:
            return super().forward(x)
        dims = [0, *range(2, x.dim())]
        variance, mean = torch.var_mean(x.float(), dim=dims, correction=0)
        stats = gather_rows(torch.stack([mean, variance])[None])  # [world, 2, C]
        mean = stats[:, 0].mean(0)
        variance = (stats[:, 1] + (stats[:, 0] - mean).square()).mean(0)
        if self.track_running_stats:
            self._track(mean.detach(), variance.detach(), world * x.numel() // x.shape[1])
        shape = [1, -1] + [1] * (x.dim() - 2)
        y = (x.float() - mean.view(shape)) * torch.rsqrt(variance.view(shape) + self.eps)
        if self.affine:
            y = y * self.weight.view(shape) + self.bias.view(shape)
        return y.to(x.dtype)

    @torch.no_grad()
    def _track(self, mean: Tensor, variance: Tensor, count: int) -> None:
        """Running statistics as BatchNorm keeps them: the unbiased variance, `momentum` or a cumulative mean."""
        self.num_batches_tracked.add_(1)
        factor = self.momentum if self.momentum is not None else 1.0 / float(self.num_batches_tracked)
        self.running_mean.lerp_(mean, factor)
        self.running_var.lerp_(variance * count / max(count - 1, 1), factor)


def global_batchnorm(module: nn.Module) -> nn.Module:
    """`module` with every BatchNorm3d in it replaced by a `GlobalBatchNorm` holding its state."""
    for name, child in module.named_children():
        if type(child) is nn.BatchNorm3d:
            synced = GlobalBatchNorm(child.num_features, child.eps, child.momentum, child.affine,
                                     child.track_running_stats)
            synced.load_state_dict(child.state_dict())
            setattr(module, name, synced.to(child.running_mean.device))
        else:
            global_batchnorm(child)
    return module


def agree(step: Callable[[], T]) -> T:
    """`step()` on every rank; if it fails with a `VavaError` on any rank, it fails on all of them (the
    others naming the rank and its message), so no rank goes on to wait for one that stopped."""
    try:
        result, error = step(), None
    except VavaError as err:
        result, error = None, err
    if joined_world() > 1:
        messages = all_gather_json(None if error is None else str(error))
        failed = next(((rank, text) for rank, text in enumerate(messages) if text is not None), None)
        if error is None and failed is not None:
            raise VavaError(f"rank {failed[0]} stopped: {failed[1]}")
    if error is not None:
        raise error
    return result  # type: ignore[return-value]


def share_random_state() -> None:
    """Give every rank rank 0's CPU random state (after work that rank 0 alone did, such as an evaluation)."""
    if joined_world() > 1:
        state = [torch.get_rng_state()]
        dist.broadcast_object_list(state, src=0)
        torch.set_rng_state(state[0])
