"""Soft-DTW and baseline objectives: forward + backward times on the CPU.

1. Soft-DTW (gamma 0.1, squared Euclidean costs of L2-normalised 128-d embeddings), for 32 pairs x 40
   frames and 4 pairs x 300 frames:
   * ours: `soft_dtw` (anti-diagonal wavefront over all pairs, E-recursion backward), float32 and float64;
   * ours through autograd: the same wavefront differentiated by autograd (the `table=True` path, which
     GTA uses), to show why the value path has its own backward;
   * a per-cell loop: the textbook double loop over cells in plain Python floats, pair by pair, for R and
     then for E (written only here), chained to the embeddings through torch's cost gradient.
   Values and gradients are compared in float64.
2. Every registered objective at the Table 8 sizes: B = 4 pairs, T = 20 and 40, D = 128, float32.

Defaults to one thread (the tensors are small; timings stay stable on a shared machine).
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

from vava.stages.train.objectives import OBJECTIVES, build_objective
from vava.stages.train.objectives.alignment import pairwise_sq_dists, soft_dtw
from vava.stages.train.objectives.base import PairBatch

GAMMA = 0.1


def loop_soft_dtw(cost: list[list[float]], gamma: float) -> tuple[float, list[list[float]]]:
    """R[N, M] and dR[N, M]/dC by the cell-by-cell recursions of Cuturi & Blondel (2017), plain floats."""
    n, m = len(cost), len(cost[0])
    inf = math.inf
    r = [[inf] * (m + 2) for _ in range(n + 2)]
    r[0][0] = 0.0
    for i in range(1, n + 1):
        row, up = r[i], r[i - 1]
        for j in range(1, m + 1):
            a, b, c = -up[j - 1] / gamma, -up[j] / gamma, -row[j - 1] / gamma
            top = max(a, b, c)
            total = math.exp(a - top) + math.exp(b - top) + math.exp(c - top)
            row[j] = cost[i - 1][j - 1] - gamma * (math.log(total) + top)
    padded = [[0.0] * (m + 2) for _ in range(n + 2)]
    for i in range(n):
        padded[i + 1][1:m + 1] = cost[i]
    for i in range(1, n + 1):
        r[i][m + 1] = -inf
    for j in range(1, m + 1):
        r[n + 1][j] = -inf
    r[n + 1][m + 1] = r[n][m]
    e = [[0.0] * (m + 2) for _ in range(n + 2)]
    e[n + 1][m + 1] = 1.0
    for i in range(n, 0, -1):
        for j in range(m, 0, -1):
            here = r[i][j]
            a = math.exp((r[i + 1][j] - here - padded[i + 1][j]) / gamma)
            b = math.exp((r[i][j + 1] - here - padded[i][j + 1]) / gamma)
            c = math.exp((r[i + 1][j + 1] - here - padded[i + 1][j + 1]) / gamma)
            e[i][j] = a * e[i + 1][j] + b * e[i][j + 1] + c * e[i + 1][j + 1]
    return r[n][m], [row[1:m + 1] for row in e[1:n + 1]]


def loop_forward_backward(x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
    """Values [P] and d(sum of values)/dx with the per-cell loop."""
    x = x.detach().requires_grad_()
    cost = pairwise_sq_dists(x, y)
    values, grads = [], []
    for pair in cost.detach().double().tolist():
        value, expected = loop_soft_dtw(pair, GAMMA)
        values.append(value)
        grads.append(expected)
    cost.backward(torch.tensor(grads, dtype=cost.dtype))
    return torch.tensor(values, dtype=torch.float64), x.grad


def ours_forward_backward(x: Tensor, y: Tensor, table: bool = False) -> tuple[Tensor, Tensor]:
    x = x.detach().requires_grad_()
    cost = pairwise_sq_dists(x, y)
    values = soft_dtw(cost, GAMMA, table=True)[:, -1, -1] if table else soft_dtw(cost, GAMMA)
    values.sum().backward()
    return values.detach(), x.grad


def timed(run: Callable[[], object], repeats: int) -> float:
    """Median wall time in ms of `repeats` runs after one warm-up."""
    run()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def bench_soft_dtw(pairs: int, frames: int, repeats: int, loop_repeats: int) -> None:
    g = torch.Generator().manual_seed(0)
    x = F.normalize(torch.randn(pairs, frames, 128, generator=g), dim=-1)
    y = F.normalize(torch.randn(pairs, frames, 128, generator=g), dim=-1)
    x64, y64 = x.double(), y.double()
    ours_values, ours_grad = ours_forward_backward(x64, y64)
    loop_values, loop_grad = loop_forward_backward(x64, y64)
    value_diff = ((ours_values - loop_values).abs() / loop_values.abs()).max().item()
    grad_diff = ((ours_grad - loop_grad).norm() / loop_grad.norm()).item()
    if value_diff > 1e-9 or grad_diff > 1e-8:
        raise SystemExit(f"soft-DTW disagrees with the per-cell loop: value {value_diff:.2e}, gradient {grad_diff:.2e}")
    values32 = ours_forward_backward(x, y)[0].double()
    value_diff32 = ((values32 - loop_values).abs() / loop_values.abs()).max().item()
    ours32 = timed(lambda: ours_forward_backward(x, y), repeats)
    ours64 = timed(lambda: ours_forward_backward(x64, y64), repeats)
    autograd32 = timed(lambda: ours_forward_backward(x, y, table=True), max(1, repeats // 2))
    loop = timed(lambda: loop_forward_backward(x64, y64), loop_repeats)
    print(f"| {pairs} x {frames} | {ours32:.1f} | {ours64:.1f} | {autograd32:.1f} | {loop:.0f} | "
          f"{loop / ours32:.0f}x | {autograd32 / ours32:.2f}x | {value_diff:.1e} / {grad_diff:.1e} | "
          f"{value_diff32:.1e} |")


def random_batch(pairs: int, frames: int, dim: int, seed: int) -> PairBatch:
    g = torch.Generator().manual_seed(seed)
    embeddings = torch.randn(pairs, 2, frames, dim, generator=g)
    lengths = torch.randint(frames + 10, 4 * frames, (pairs, 2), generator=g)
    steps = torch.stack([torch.stack([torch.sort(torch.randperm(int(n), generator=g)[:frames]).values for n in row])
                         for row in lengths])
    labels = torch.randint(-1, 8, (pairs, 2, frames), generator=g)
    return PairBatch(embeddings, steps, lengths, labels, 150_000)


def bench_objectives(repeats: int) -> None:
    print("\n| objective | T = 20 (ms) | T = 40 (ms) |")
    print("|---|---|---|")
    for name in OBJECTIVES:
        fields = OBJECTIVES[name].config_class.__dataclass_fields__
        options = {"embedding_dim": 128} if "embedding_dim" in fields else {}
        objective = build_objective(name, options)
        cells = []
        for frames in (20, 40):
            batch = random_batch(4, frames, 128, seed=frames)

            def step() -> None:
                embeddings = batch.embeddings.clone().requires_grad_()
                loss, _ = objective(PairBatch(embeddings, batch.frame_indices, batch.video_lengths, batch.labels,
                                              batch.step))
                loss.backward()
            cells.append(timed(step, repeats))
        print(f"| {name} | {cells[0]:.1f} | {cells[1]:.1f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=10)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), CPU, gamma {GAMMA}, D 128, "
          f"median of {args.repeats} (loop: of 1-3)")
    print("\nSoft-DTW forward + backward (ms); differences: ours vs loop in float64 (value / gradient), "
          "ours float32 value vs loop")
    print("| pairs x frames | ours f32 | ours f64 | autograd wavefront f32 | per-cell loop f64 | loop / ours f32 | "
          "autograd / ours | f64 diff | f32 diff |")
    print("|---|---|---|---|---|---|---|---|---|")
    bench_soft_dtw(32, 40, args.repeats, 3)
    bench_soft_dtw(4, 300, max(2, args.repeats // 3), 1)
    bench_objectives(args.repeats)


if __name__ == "__main__":
    main()
