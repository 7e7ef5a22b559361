"""Distance and optimal-transport helpers shared by the alignment objectives.

Everything is batched over leading dimensions and differentiable (autograd runs through every
Sinkhorn update; no envelope-theorem shortcuts).

Soft-DTW (docs/method.md#soft-dtw) and GTA's smoothed DTW tables (docs/method.md#gta) share one
anti-diagonal wavefront (`soft_dtw`): the N+M-1 anti-diagonals of the table are computed one after the
other, each as one vectorised step over all pairs and all its cells. Cells outside the table hold the
finite constant `border` instead of +inf, so no log-sum-exp or expectation ever sees only infinities
and no gradient is NaN. The plain soft-DTW value (log-sum-exp soft-min, no table) has a custom
backward that runs the expected-alignment (E) recursion over the same anti-diagonals in reverse; every
other case (other relaxations, the whole table) is differentiated by autograd through the wavefront.
"""
from __future__ import annotations

import functools
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




# ---------------------------------------------------------------- soft-DTW (docs/method.md#soft-dtw)

SOFT_DTW_BORDER = 1e10  # R outside the table; exp(-(border - R) / gamma) underflows to exactly 0
RELAXATIONS = ("softmin", "prob", "min")


def smooth_min(values: Tensor, gamma: float, relaxation: str = "softmin", dim: int = -1) -> Tensor:
    """Relaxed minimum over dimension `dim`.

    softmin: -gamma * log sum exp(-r / gamma) (Cuturi's soft-min; GTA's dtw_minGamma);
    prob:    sum softmax(-r / gamma) * r, the expected value under the Boltzmann weights (GTA's dtw_prob);
    min:     the hard minimum (GTA's non-diff).
    """
    if relaxation == "softmin":
        return -gamma * torch.logsumexp(values / -gamma, dim=dim)
    if relaxation == "prob":
        return (torch.softmax(values / -gamma, dim=dim) * values).sum(dim=dim)
    if relaxation == "min":
        return values.amin(dim=dim)
    raise ValueError(f"relaxation must be one of {', '.join(RELAXATIONS)}, got {relaxation!r}")


class _Diagonals:
    """Index maps between tables [P, N, M] and their anti-diagonals [K = N+M-1, P, N] (d = i + j, 0-based).

    Diagonal d holds rows i in [lo_d, hi_d) (`ranges`); the other entries of its vector are outside the table.
    """

    def __init__(self, n: int, m: int, device: torch.device) -> None:
        diagonal = torch.arange(n + m - 1, device=device)[:, None]
        row = torch.arange(n, device=device)[None, :]
        self.rows, self.columns = row.expand(n + m - 1, n), (diagonal - row).clamp(0, m - 1)  # [K, N]
        cell_row = torch.arange(n, device=device)[:, None]
        self.cell_diagonal = cell_row + torch.arange(m, device=device)[None, :]             # [N, M]
        self.cell_row = cell_row.expand(n, m)
        self.ranges = [(max(0, d - m + 1), min(n, d + 1)) for d in range(n + m - 1)]

    def skew(self, table: Tensor) -> Tensor:
        """[P, N, M] -> [K, P, N]: entry (d, :, i) is table[:, i, d - i] (clamped index outside the table)."""
        return table[:, self.rows, self.columns].transpose(0, 1).contiguous()

    def unskew(self, diagonals: Tensor) -> Tensor:
        """[K, P, N] -> [P, N, M], the inverse of `skew` on the entries inside the table."""
        return diagonals[self.cell_diagonal, :, self.cell_row].permute(2, 0, 1)


@functools.lru_cache(maxsize=64)
def _diagonals(n: int, m: int, device: torch.device) -> _Diagonals:
    return _Diagonals(n, m, device)


def _wavefront(cost_diagonals: Tensor, maps: _Diagonals, gamma: float, relaxation: str, border: float) -> list[Tensor]:
    """Differentiable wavefront: the 1-based rows R[0..N, k] of every anti-diagonal k = 2..N+M, [P, N+1] each.

    R[i, j] = C[i, j] + smooth_min(R[i-1, j-1], R[i-1, j], R[i, j-1]); R[0, 0] = 0, and `border` on row 0,
    column 0 and every entry outside the table. Only the cells inside the table are computed; the diagonal
    is completed with border entries, so no relaxation ever sees only border values.
    """
    _, batch, n = cost_diagonals.shape
    border_row = cost_diagonals.new_full((batch, n + 1), border)
    older = torch.cat([border_row.new_zeros(batch, 1), border_row[:, 1:]], dim=1)  # k = 0: R[0, 0] = 0
    newer = border_row                                                             # k = 1
    rows = []
    for d, (lo, hi) in enumerate(maps.ranges):
        previous = torch.stack((older[:, lo:hi], newer[:, lo:hi], newer[:, lo + 1:hi + 1]))  # diagonal, up, left
        value = cost_diagonals[d, :, lo:hi] + smooth_min(previous, gamma, relaxation, dim=0)
        row = torch.cat((border_row[:, :lo + 1], value, border_row[:, hi + 1:]), dim=1)
        rows.append(row)
        older, newer = newer, row
    return rows


class _SoftDtwValue(torch.autograd.Function):
    """R[N, M] of the log-sum-exp soft-DTW; backward by the E-matrix recursion (Cuturi & Blondel 2017).

    The forward keeps the Boltzmann weights of the three predecessors of every cell; the backward sweeps
    the anti-diagonals in reverse: E[i, j] = sum over the successors s of (i, j) of E[s] * weight of (i, j)
    in s, from E[N, M] = 1; dR[N, M]/dC = E. Weights below exp(floor) (the smallest normal number of the
    dtype) are clamped there, which keeps exp off its slow subnormal path and changes E by < 1e-37 (float32).
    """

    @staticmethod
    def forward(ctx, cost: Tensor, gamma: float, border: float) -> Tensor:  # type: ignore[override]
        batch, n, m = cost.shape
        maps = _diagonals(n, m, cost.device)
        count = n + m - 1
        cost_diagonals = maps.skew(cost)
        floor = math.log(torch.finfo(cost.dtype).tiny) + 1.0
        table = cost.new_full((count + 2, batch, n + 1), border)  # 1-based rows of diagonals k = 0..N+M
        table[0, :, 0] = 0.0
        weights = cost.new_zeros(3, count + 2, batch, n + 1)       # diagonal, up, left; 0-based rows
        for d, (lo, hi) in enumerate(maps.ranges):
            previous = torch.stack((table[d, :, lo:hi], table[d + 1, :, lo:hi], table[d + 1, :, lo + 1:hi + 1]))
            low = previous.amin(dim=0)
            scaled = torch.sub(low, previous).div_(gamma).clamp_(min=floor).exp_()  # (min - r) / gamma <= 0
            total = scaled.sum(dim=0)
            torch.div(scaled, total, out=weights[:, d, :, lo:hi])
            out = table[d + 2, :, lo + 1:hi + 1]
            torch.add(cost_diagonals[d, :, lo:hi], low, out=out).add_(total.log_(), alpha=-gamma)
        ctx.maps = maps
        ctx.save_for_backward(weights)
        return table[count + 1, :, n].clone()

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_value: Tensor) -> tuple[Tensor, None, None]:  # type: ignore[override]
        (weights,) = ctx.saved_tensors
        from_diagonal, from_up, from_left = weights.unbind(0)      # [K+2, P, N+1] each, zero outside the table
        count, n = from_up.shape[0] - 2, from_up.shape[2] - 1
        expected = torch.zeros_like(from_up)
        expected[count - 1, :, n - 1] = 1.0
        # successors of (i, j) on diagonal d: (i+1, j) [d+1, i+1, up], (i, j+1) [d+1, i, left], (i+1, j+1) [d+2, i+1]
        for d in range(count - 2, -1, -1):
            lo, hi = ctx.maps.ranges[d]
            out = expected[d, :, lo:hi]
            torch.mul(expected[d + 1, :, lo + 1:hi + 1], from_up[d + 1, :, lo + 1:hi + 1], out=out)
            out.addcmul_(expected[d + 1, :, lo:hi], from_left[d + 1, :, lo:hi])
            out.addcmul_(expected[d + 2, :, lo + 1:hi + 1], from_diagonal[d + 2, :, lo + 1:hi + 1])
        grad_cost = ctx.maps.unskew(expected[:count, :, :n]) * grad_value[:, None, None]
        return grad_cost, None, None


def soft_dtw(cost: Tensor, gamma: float = 0.1, *, relaxation: str = "softmin", table: bool = False,
             border: float = SOFT_DTW_BORDER) -> Tensor:
    """Smoothed DTW of cost matrices [..., N, M]: the value R[N, M] [...] or, with table=True, R[1:, 1:].

    relaxation: see `smooth_min`. softmin is soft-DTW; prob and min are GTA's other
    relaxations (docs/method.md#gta). The softmin value uses the custom E-recursion backward; the others
    backpropagate through the wavefront. `border` (finite) stands for +inf outside the table.
    """
    if relaxation not in RELAXATIONS:
        raise ValueError(f"relaxation must be one of {', '.join(RELAXATIONS)}, got {relaxation!r}")
    if not gamma > 0 and relaxation != "min":
        raise ValueError(f"gamma must be > 0, got {gamma!r}")
    lead, (n, m) = cost.shape[:-2], cost.shape[-2:]
    flat = cost.reshape(-1, n, m)
    if relaxation == "softmin" and not table:
        return _SoftDtwValue.apply(flat, float(gamma), float(border)).reshape(lead)
    maps = _diagonals(n, m, cost.device)
    rows = _wavefront(maps.skew(flat), maps, float(gamma), relaxation, float(border))
    if not table:
        return rows[-1][:, n].reshape(lead)
    return maps.unskew(torch.stack(rows)[:, :, 1:]).reshape(*lead, n, m)


def soft_dtw_divergence(x: Tensor, y: Tensor, gamma: float = 0.1) -> Tensor:
    """Soft-DTW divergence sdtw(x, y) - (sdtw(x, x) + sdtw(y, y)) / 2 on squared Euclidean costs.

    x [..., N, d], y [..., M, d] -> [...]. Zero for x = y, symmetric, >= 0 (Blondel et al. 2021).
    """
    cross = soft_dtw(pairwise_sq_dists(x, y), gamma)
    if x.shape[-2] == y.shape[-2]:
        selves = soft_dtw(torch.stack([pairwise_sq_dists(x, x), pairwise_sq_dists(y, y)]), gamma)
        return cross - 0.5 * (selves[0] + selves[1])
    return cross - 0.5 * (soft_dtw(pairwise_sq_dists(x, x), gamma) + soft_dtw(pairwise_sq_dists(y, y), gamma))


__all__ = ["RELAXATIONS", "SOFT_DTW_BORDER", "column_marginal_error", "log_sinkhorn", "pairwise_sq_dists",
           "smooth_min", "soft_dtw", "soft_dtw_divergence", "uniform_log_marginal"]
