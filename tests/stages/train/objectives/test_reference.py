"""The shared baseline reference inputs are the ones docs/method.md#baseline-reference-values was computed on."""
from __future__ import annotations

import pytest
import torch

from tests.stages.train.objectives.reference import LENGTHS, STEPS, E


def test_reference_inputs() -> None:
    assert E[0, 0, :4].tolist() == pytest.approx([-1.12584, -1.15236, -0.250579, -0.433879], abs=1e-5)
    assert E.double().sum().item() == pytest.approx(-100.193578, abs=1e-5)
    assert E.double().abs().sum().item() == pytest.approx(8142.34954, abs=1e-4)
    g = torch.Generator().manual_seed(1)
    drawn = [torch.sort(torch.randperm(int(n), generator=g)[:20]).values for n in LENGTHS]
    assert torch.equal(torch.stack(drawn), STEPS)
