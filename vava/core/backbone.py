"""Frozen image backbones cut at an intermediate layer, behind a small registry."""
from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torchvision import models

from vava.core.errors import VavaError


@dataclass(frozen=True)
class BackboneSpec:
    """A torchvision classifier truncated after the first `blocks` blocks of `layer` (all of them when None);
    `stride` is its spatial down-sampling."""

    build: Callable[[], nn.Module]
    imagenet: models.WeightsEnum
    layer: str
    channels: int
    stride: int
    blocks: int | None = None

    @property
    def cut(self) -> str:
        """The last module kept, named as in torchvision's state dict: `layer3.2` (third block) or `layer3`."""
        return self.layer if self.blocks is None else f"{self.layer}.{self.blocks - 1}"


def _resnet_trunk(net: nn.Module, layer: str, blocks: int | None) -> nn.Sequential:
    names = ["conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3", "layer4"]
    kept = [getattr(net, name) for name in names[: names.index(layer) + 1]]
    if blocks is not None:
        kept[-1] = kept[-1][:blocks]
    return nn.Sequential(*kept)


# conv4 per Table 9 of the VAVA supplement: 3 bottleneck blocks, i.e. the third block of torchvision's ResNet-50
# `layer3` (TCC's `conv4_block3_out`), 1024 channels at stride 16. `resnet50-layer3` keeps all 6 blocks of layer3;
# ResNet-18's layer3 has only 2 blocks, so it is kept whole.
BACKBONES: dict[str, BackboneSpec] = {
    "resnet50": BackboneSpec(models.resnet50, models.ResNet50_Weights.IMAGENET1K_V1, "layer3", 1024, 16, blocks=3),
    "resnet50-layer3": BackboneSpec(models.resnet50, models.ResNet50_Weights.IMAGENET1K_V1, "layer3", 1024, 16),
    "resnet18": BackboneSpec(models.resnet18, models.ResNet18_Weights.IMAGENET1K_V1, "layer3", 256, 16),
}


def backbone_with_cut(name: str, cut: str) -> str:
    """The registered backbone of the same network as `name` cut at `cut` (a feature set records both):
    `resnet50` at `layer3` is `resnet50-layer3`, the cut `resnet50` had before it moved to `layer3.2`."""
    spec = BACKBONES.get(name)
    found = [other for other, s in BACKBONES.items() if spec and s.imagenet == spec.imagenet and s.cut == cut]
    if not found:
        raise VavaError(f"no registered backbone is {name} cut at {cut!r} (known: "
                        f"{', '.join(f'{n} at {s.cut}' for n, s in BACKBONES.items())})")
    return found[0]


def imagenet_weights_path(name: str) -> Path:
    """Where torch's hub cache keeps the ImageNet weights of backbone `name`."""
    url = BACKBONES[name].imagenet.url
    return Path(torch.hub.get_dir()) / "checkpoints" / url.rsplit("/", 1)[-1]


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()


def _state_digest(module: nn.Module) -> str:
    digest = hashlib.sha256()
    for name, tensor in module.state_dict().items():
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def load_backbone(name: str, weights: str, seed: int = 0) -> tuple[nn.Module, str]:
    """Build the truncated, frozen backbone in eval mode and say which weights it carries.

    `weights` is "imagenet" (read from the torch hub cache, never downloaded), "random" (seeded
    initialisation) or a path to a state-dict file. The returned identity is "random:<seed>:<digest>"
    or "sha256:<hash of the weights file>".
    """
    if name not in BACKBONES:
        raise VavaError(f"--backbone: unknown backbone {name!r} (known: {', '.join(sorted(BACKBONES))})")
    spec = BACKBONES[name]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = spec.build()
    if weights == "random":
        trunk = _resnet_trunk(net, spec.layer, spec.blocks)
        identity = f"random:{seed}:{_state_digest(trunk)[:16]}"
    else:
        path = imagenet_weights_path(name) if weights == "imagenet" else Path(weights)
        if not path.is_file():
            if weights == "imagenet":
                raise VavaError(
                    f"--weights imagenet: {path} not found and nothing is downloaded at run time; fetch "
                    f"{spec.imagenet.url} on a machine with network and place it there, or pass --weights FILE")
            raise VavaError(f"--weights: file {path} not found")
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
            net.load_state_dict(state)
        except Exception as err:  # torch raises many types for a bad file; all mean the same to a user
            raise VavaError(f"--weights: {path} is not a {name} state dict ({str(err).splitlines()[0]})") from None
        trunk = _resnet_trunk(net, spec.layer, spec.blocks)
        identity = f"sha256:{file_sha256(path)}"
    trunk.eval().requires_grad_(False)
    return trunk, identity


@torch.inference_mode()
def backbone_maps(backbone: nn.Module, images: torch.Tensor, device: torch.device) -> np.ndarray:
    """float16 (n, C, H, W) maps of preprocessed images: the one way extract and align run the
    backbone (channels_last input and bf16 autocast on GPU, plain float32 on CPU)."""
    images = images.to(device, non_blocking=True)
    cuda = device.type == "cuda"
    if cuda:
        images = images.contiguous(memory_format=torch.channels_last)
    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=cuda):
        maps = backbone(images)
    return maps.to(torch.float16).cpu().numpy()
