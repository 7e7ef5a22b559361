"""The baseline reference inputs of docs/method.md#baseline-reference-values (seeded embeddings, sampled
steps, video lengths) and helpers the per-objective tests share."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from vava.stages.train.objectives.base import PairBatch

F64 = torch.float64
REL = 1e-5  # values are given to 6 significant digits (docs/method.md#baseline-reference-values)

STEPS = torch.tensor([
    [4, 5, 10, 11, 14, 16, 18, 20, 21, 25, 27, 28, 30, 31, 33, 36, 38, 43, 45, 46],
    [0, 4, 8, 10, 11, 15, 20, 22, 25, 26, 31, 38, 40, 43, 45, 47, 49, 56, 57, 58],
    [0, 1, 3, 4, 6, 8, 10, 12, 13, 15, 17, 19, 20, 25, 27, 32, 33, 35, 36, 39],
    [1, 3, 5, 6, 10, 14, 15, 18, 20, 23, 24, 28, 29, 34, 39, 44, 47, 49, 71, 75],
])
LENGTHS = torch.tensor([50, 64, 40, 80])


def _reference() -> tuple[torch.Tensor, torch.Tensor]:
    state = torch.get_rng_state()
    torch.manual_seed(0)
    e = torch.randn(4, 20, 128)
    torch.set_rng_state(state)
    return e, F.normalize(e, dim=-1)


E, EN = _reference()


def assert_rel(value: torch.Tensor | float, expected: float, rel: float = REL) -> None:
    assert float(torch.as_tensor(value).detach()) == pytest.approx(expected, rel=rel)


def pairs(z: torch.Tensor, steps: torch.Tensor = STEPS, lengths: torch.Tensor = LENGTHS,
          labels: torch.Tensor | None = None) -> PairBatch:
    """Videos [2P, T, D] as a PairBatch of P pairs (videos 0,1 / 2,3 / ...)."""
    count, frames = z.shape[0] // 2, z.shape[1]
    labels = torch.full((count, 2, frames), -1) if labels is None else labels.view(count, 2, frames)
    return PairBatch(z.view(count, 2, frames, -1), steps[:2 * count].view(count, 2, frames),
                     lengths[:2 * count].view(count, 2), labels, 0)
