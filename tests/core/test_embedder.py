"""The embedder network (vava.core.embedder): context frames and the table-9 architecture."""
from __future__ import annotations

import torch

from vava.core.embedder import Embedder, EmbedderConfig, context_indices, shallow_conv3d


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


def test_shallow_conv3d_matches_conv3d_in_value_and_gradient() -> None:
    torch.manual_seed(0)
    conv = torch.nn.Conv3d(5, 3, kernel_size=3, padding=1).double()
    for depth in (1, 2, 3):  # 3 falls back to the Conv3d itself
        x = torch.randn(4, 5, depth, 3, 2, dtype=torch.float64)
        expected = conv(x)
        grads = torch.autograd.grad(expected.sin().sum(), [conv.weight, conv.bias])
        actual = shallow_conv3d(conv, x)
        assert actual.shape == expected.shape
        torch.testing.assert_close(actual, expected, rtol=1e-12, atol=1e-12)
        for got, want in zip(torch.autograd.grad(actual.sin().sum(), [conv.weight, conv.bias]), grads):
            torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)


def test_embedder_output_is_the_conv3d_networks() -> None:
    """The forward pass equals running the Sequential of Conv3d/BatchNorm3d/ReLU layers as built."""
    torch.manual_seed(1)
    embedder = Embedder(16, EmbedderConfig(conv_channels=8, fc_channels=8)).double().eval()
    maps = torch.randn(6, 2, 16, 3, 3, dtype=torch.float64)
    pooled = embedder.convs(maps.transpose(1, 2)).amax(dim=(2, 3, 4))
    torch.testing.assert_close(embedder(maps), embedder.embedding(embedder.fcs(pooled)))
