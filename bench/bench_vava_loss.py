"""VAVA loss: forward + backward time of the vectorised loss against a per-entry Python-loop version.

The loop version is written here only, from the same formulas (docs/method.md, paper mode, GMM
prior): double loops over (i, j) build the distances, P, S and K as scalar tensors, the intra terms
loop over frame pairs, matches are found by scanning rows and columns, and the batch is a loop over
pairs, in the style of the reference port. Both are timed on the CPU in float32 on a batch of 4 pairs,
D=128, on one thread by default (the tensors are small; timings stay stable on a shared machine).
The loss check is printed twice: in float32 the loop version's long chains of scalar additions round
at the 1e-5 level for T=100, so a float64 forward of both shows that the formulas agree exactly.
"""
from __future__ import annotations

import argparse
import math
import statistics
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

from vava.stages.train.objectives.base import PairBatch
from vava.stages.train.objectives.vava import VavaConfig, VavaLoss

STEP = 150_000  # phi = 0.679: both prior components matter


def loop_phi(step: int) -> float:
    return min(max(0.999 ** math.floor(math.sqrt(step + 1)), 0.001), 0.999)


def loop_prior_and_idm(i: int, j: int, centre: int, n1: int, m1: int, phi: float, c: VavaConfig,
                       lambda1: float) -> tuple[float, float]:
    """P_ij and S_ij (1-based augmented indices) for one entry."""
    mid = math.sqrt(1 / n1 ** 2 + 1 / m1 ** 2)
    thr = 2 * c.virtual_distance / (n1 + m1)

    def gauss(z: float) -> float:
        return math.exp(-z * z / (2 * c.sigma_prior ** 2)) / (c.sigma_prior * math.sqrt(2 * math.pi))

    if (i == 1) != (j == 1):
        return gauss(1.5 * thr / mid), lambda1 / ((1.5 * thr) ** 2 + 1)
    d_diag = abs(i / n1 - j / m1)
    d_opt = abs(j / m1 - centre / m1)
    prior = phi * gauss(d_diag / mid) + (1 - phi) * gauss(d_opt / mid)
    return prior, lambda1 * (phi / (d_diag ** 2 + 1) + (1 - phi) / (d_opt ** 2 + 1))


def loop_intra(x: Tensor, c: VavaConfig) -> Tensor:
    n = len(x)
    total = x.new_zeros(())
    for i in range(n):
        for j in range(n):
            dist = ((x[i] - x[j]) ** 2).mean()
            if abs(i - j) > c.window:
                total = total + torch.clamp(c.margin - dist, min=0)
            else:
                total = total + dist / ((i - j) ** 2 + 1)
    return total / n ** 2


def loop_pair_loss(x: Tensor, y: Tensor, step: int, c: VavaConfig) -> Tensor:
    n, m = len(x), len(y)
    n1, m1 = n + 1, m + 1
    phi = loop_phi(step)
    lambda1, lambda2 = c.lambda1 * (n + m), c.lambda2 * n * m / 4
    dist = [[((x[i] - y[j]) ** 2).sum() for j in range(m)] for i in range(n)]
    nearest = [min(range(m), key=lambda j: dist[i][j].item()) for i in range(n)]
    kernel, cost = [], []
    for i in range(1, n1 + 1):
        centre = 1 if i == 1 else nearest[i - 2] + 2
        for j in range(1, m1 + 1):
            prior, idm = loop_prior_and_idm(i, j, centre, n1, m1, phi, c, lambda1)
            entry_cost = x.new_tensor(c.zeta) if i == 1 or j == 1 else dist[i - 2][j - 2]
            kernel.append(torch.clamp(prior * torch.exp((idm - entry_cost) / lambda2), 1e-15, 1e20))
            cost.append(entry_cost)
    kernel_m, cost_m = torch.stack(kernel).view(n1, m1), torch.stack(cost).view(n1, m1)
    a, b = x.new_full((n1,), 1 / n1), x.new_full((m1,), 1 / m1)
    u = a
    for _ in range(c.sinkhorn_iters + 1):
        v = b / (kernel_m.T @ u)
        u = a / (kernel_m @ v)
    plan = u[:, None] * kernel_m * v[None, :]
    align = (plan * cost_m).sum() / (n1 * m1)

    scores = plan.detach()[1:, 1:].tolist()
    best_x = [max(range(m), key=lambda j: scores[i][j]) for i in range(n)]
    worst_x = [min(range(m), key=lambda j: scores[i][j]) for i in range(n)]
    best_y = [max(range(n), key=lambda i: scores[i][j]) for j in range(m)]
    worst_y = [min(range(n), key=lambda i: scores[i][j]) for j in range(m)]

    def match_distance(cols: list[int], rows: list[int]) -> Tensor:
        to_y = sum(((x[i] - y[cols[i]]) ** 2).mean() for i in range(n)) / n
        to_x = sum(((y[j] - x[rows[j]]) ** 2).mean() for j in range(m)) / m
        return (to_y + to_x) / c.temperature

    inter = F.softplus(match_distance(best_x, best_y) - match_distance(worst_x, worst_y))
    return c.gamma * (loop_intra(x, c) + loop_intra(y, c)) + align / (n * m) + c.inter_weight * inter


def loop_batch_loss(embeddings: Tensor, step: int, c: VavaConfig) -> Tensor:
    return torch.stack([loop_pair_loss(pair[0], pair[1], step, c) for pair in embeddings]).mean()


def timed(fn: Callable[[Tensor], Tensor], embeddings: Tensor, repeats: int) -> tuple[float, Tensor, Tensor]:
    """Median seconds of forward + backward, with the last loss and gradient."""
    times = []
    for _ in range(repeats):
        leaf = embeddings.clone().requires_grad_()
        start = time.perf_counter()
        loss = fn(leaf)
        loss.backward()
        times.append(time.perf_counter() - start)
    return statistics.median(times), loss.detach(), leaf.grad


def relative(value: Tensor, reference: Tensor) -> float:
    return float((value - reference).norm() / reference.norm())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--lengths", type=int, nargs="+", default=[20, 40, 100])
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    config = VavaConfig()
    loss_fn = VavaLoss(config)

    def ours(embeddings: Tensor) -> Tensor:
        return loss_fn(PairBatch(embeddings, None, None, None, STEP))[0]

    def loops(embeddings: Tensor) -> Tensor:
        return loop_batch_loss(embeddings, STEP, config)

    g = torch.Generator().manual_seed(0)

    print(f"VAVA loss, forward + backward, batch of 4 pairs, D=128, float32, CPU, threads={torch.get_num_threads()}")
    print(f"{'T':>4} {'ours ms':>9} {'loops ms':>10} {'speed-up':>9}   rel diff: {'loss f32':>9} {'grad f32':>9} "
          f"{'loss f64':>9}")
    for length in args.lengths:
        embeddings = 0.1 * torch.randn(4, 2, length, 128, generator=g)
        timed(ours, embeddings, 3)  # warm-up (and grid caches)
        ours_s, ours_loss, ours_grad = timed(ours, embeddings, args.repeats)
        loop_s, loop_loss, loop_grad = timed(loops, embeddings, 3 if length <= 40 else 1)
        with torch.no_grad():
            ours64, loop64 = ours(embeddings.double()), loops(embeddings.double())
        print(f"{length:4d} {ours_s * 1e3:9.2f} {loop_s * 1e3:10.0f} {loop_s / ours_s:8.0f}x   {'':9} "
              f"{relative(ours_loss, loop_loss):9.1e} {relative(ours_grad, loop_grad):9.1e} "
              f"{relative(ours64, loop64):9.1e}")
    embeddings = 0.1 * torch.randn(4, 2, 200, 128, generator=g)
    timed(ours, embeddings, 2)
    print(f" 200 {timed(ours, embeddings, args.repeats)[0] * 1e3:9.2f}   (ours only)")


if __name__ == "__main__":
    main()
