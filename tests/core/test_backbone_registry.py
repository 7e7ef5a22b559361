"""The backbone registry's contract: every registered backbone, built with random weights, gives maps with
the channels and stride its `BackboneSpec` declares (timm-style: one test parametrised over the registry)."""
from __future__ import annotations

import pytest
import torch

from vava.core.backbone import BACKBONES, backbone_maps, load_backbone


@pytest.mark.parametrize("name", sorted(BACKBONES))
def test_every_backbone_gives_the_declared_channels_and_stride(name: str) -> None:
    spec = BACKBONES[name]
    backbone, identity = load_backbone(name, "random", seed=0)
    assert identity.startswith("random:0:")
    assert not any(p.requires_grad for p in backbone.parameters()) and not backbone.training
    images = torch.randn(2, 3, 64, 96, generator=torch.Generator().manual_seed(0))
    maps = backbone_maps(backbone, images, torch.device("cpu"))
    assert maps.dtype == "float16"
    assert maps.shape == (2, spec.channels, 64 // spec.stride, 96 // spec.stride)
