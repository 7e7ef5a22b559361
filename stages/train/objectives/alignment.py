"""Distance and optimal-transport helpers shared by the alignment objectives.

Everything is batched over leading dimensions and differentiable (autograd runs through every
Sinkhorn update; no envelope-theorem shortcuts).
"""
from __future__ import annotations

import math

import torch
from torch import Tensor


def pairwise_sq_dists(x: Tensor, y: Tensor) -> Tensor:
    """Squared Euclidean distances (summed over features): [..., N, d], [..., M, d] -> [..., N, M].

    Uses |x|^2 + |y|^2 - 2 x.y on inputs centred on their joint mean, which keeps the cancellation
    error small when the embeddings share a large offset, and clamps rounding negatives to 0.
    """
    centre = torch.cat([x, y], dim=-2).mean(dim=-2, keepdim=True).detach()  # D is translation invariant
    x, y = x - centre, y - centre
    cross = x @ y.transpose(-1, -2)
    return ((x * x).sum(-1)[..., :, None] + (y * y).sum(-1)[..., None, :] - 2 * cross).clamp_min(0)


def uniform_log_marginal(matrix: Tensor, dim: int) -> Tensor:
    """Uniform log marginal of the rows (dim=-2) or columns (dim=-1) of `matrix` [..., N, M]."""
    shape = matrix.shape[:-2] + matrix.shape[dim:][:1]
    return torch.full(shape, -math.log(matrix.shape[dim]), dtype=matrix.dtype, device=matrix.device)


def log_sinkhorn(log_kernel: Tensor, iters: int = 21, log_a: Tensor | None = None,
                 log_b: Tensor | None = None) -> Tensor:
    """Log transport plan log(diag(u) K diag(v)) after exactly `iters` (v, u) update pairs.

    log_kernel: [..., N, M]. log_a [..., N] and log_b [..., M] are the log marginals (uniform when
    omitted). Starts from log u = log a and updates v first, then u, so the row sums of the returned
    plan equal a (up to rounding) while the column sums only approach b. No tolerance stop.
    """
    if iters < 1:
        raise ValueError(f"iters must be >= 1, got {iters}")
    if log_a is None:
        log_a = uniform_log_marginal(log_kernel, -2)
    if log_b is None:
        log_b = uniform_log_marginal(log_kernel, -1)
    f = log_a.expand(log_kernel.shape[:-1])
    for _ in range(iters):
        g = log_b - torch.logsumexp(log_kernel + f[..., :, None], dim=-2)
        f = log_a - torch.logsumexp(log_kernel + g[..., None, :], dim=-1)
    return f[..., :, None] + log_kernel + g[..., None, :]


def column_marginal_error(log_plan: Tensor, log_b: Tensor | None = None) -> Tensor:
    """Largest |column sum - b_j| of the plan, per leading index: [..., N, M] -> [...]."""
    if log_b is None:
        log_b = uniform_log_marginal(log_plan, -1)
    return (torch.logsumexp(log_plan, dim=-2).exp() - log_b.exp()).abs().amax(dim=-1)


__all__ = ["column_marginal_error", "log_sinkhorn", "pairwise_sq_dists", "uniform_log_marginal"]
