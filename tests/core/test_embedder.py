"""The embedder network (vava.core.embedder): context frames and the table-9 architecture."""
from __future__ import annotations

import torch

from vava.core.embedder import Embedder, EmbedderConfig, FrameConv3d, context_indices


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


def test_single_frame_convolution_equals_the_conv3d_it_replaces() -> None:
    torch.manual_seed(0)
    fast = FrameConv3d(6, 5, kernel_size=3, padding=1).double()
    plain = torch.nn.Conv3d(6, 5, kernel_size=3, padding=1).double()
    plain.load_state_dict(fast.state_dict())
    for depth in (1, 2):  # depth 1: the 2D path; deeper stacks go through Conv3d itself
        x = torch.randn(4, 6, depth, 3, 5, dtype=torch.float64)
        x_fast, x_plain = x.clone().requires_grad_(), x.clone().requires_grad_()
        out_fast, out_plain = fast(x_fast), plain(x_plain)
        torch.testing.assert_close(out_fast, out_plain, rtol=0, atol=1e-12)
        weights = torch.randn_like(out_plain)
        (out_fast * weights).sum().backward()
        (out_plain * weights).sum().backward()
        torch.testing.assert_close(x_fast.grad, x_plain.grad, rtol=0, atol=1e-12)
        torch.testing.assert_close(fast.weight.grad, plain.weight.grad, rtol=0, atol=1e-12)
        torch.testing.assert_close(fast.bias.grad, plain.bias.grad, rtol=0, atol=1e-12)
        if depth == 1:  # the outer depth slices of the kernel only ever meet zero padding
            assert fast.weight.grad[:, :, [0, 2]].abs().max() == 0
        fast.zero_grad()
        plain.zero_grad()
