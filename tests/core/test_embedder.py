"""The embedder network (vava.core.embedder): context frames and the table-9 architecture."""
from __future__ import annotations

import torch

from vava.core.embedder import Embedder, EmbedderConfig, context_indices


def test_context_indices_look_back_only() -> None:
    assert context_indices(torch.tensor([0, 5, 20, 40]), 1, 15).tolist() == [[0, 0], [0, 5], [5, 20], [25, 40]]
    assert context_indices(torch.tensor([7]), 2, 3).tolist() == [[1, 4, 7]]
    assert context_indices(torch.tensor([7]), 0, 3).tolist() == [[7]]


def test_embedder_is_table_9() -> None:
    embedder = Embedder(1024, EmbedderConfig())
    assert round(sum(p.numel() for p in embedder.parameters()) / 1e6, 2) == 21.57  # docs/method.md#embedder-and-training
    maps = torch.randn(3, 2, 1024, 2, 2)
    assert embedder.eval()(maps).shape == (3, 128)
    # time is the Conv3d depth axis: swapping context and frame changes the output
    assert not torch.allclose(embedder(maps), embedder(maps.flip(1)))
    unit = Embedder(16, EmbedderConfig(conv_channels=8, fc_channels=8, l2_normalize=True)).eval()
    assert torch.allclose(unit(torch.randn(4, 2, 16, 2, 2)).norm(dim=-1), torch.ones(4))
