"""A toy backbone that is no ResNet: 16x16 patches to 8 channels (the default trunk builder cuts a Sequential)."""
from __future__ import annotations

from torch import nn

from vava.core.backbone import BackboneSpec


def patch_net() -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(3, 8, kernel_size=16, stride=16), nn.ReLU(), nn.Flatten())


SPEC = BackboneSpec(patch_net, cut="1", channels=8, stride=16)  # up to the ReLU: (8, H/16, W/16) maps
