"""Frozen image backbones cut at an intermediate layer, behind a small registry."""
from __future__ import annotations

import hashlib
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torchvision import models

from vava.core.errors import VavaError, option_name
from vava.core.files import check_regular, open_regular


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
    with open_regular(path) as handle:
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
    initialisation) or a path to a checkpoint holding the network (`trunk_weights` says which shapes
    are understood). The returned identity is "random:<seed>:<digest>"
    or "sha256:<hash of the weights file>".
    """
    if name not in BACKBONES:
        raise VavaError(f"{option_name('backbone')}: unknown backbone {name!r} (known: {', '.join(sorted(BACKBONES))})")
    spec = BACKBONES[name]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = spec.build()
    if weights == "random":
        trunk = _resnet_trunk(net, spec.layer, spec.blocks)
        identity = f"random:{seed}:{_state_digest(trunk)[:16]}"
    else:
        path = check_regular(imagenet_weights_path(name) if weights == "imagenet" else Path(weights))
        if not path.is_file():
            option = option_name("weights")
            if weights == "imagenet":
                raise VavaError(
                    f"{option} imagenet: {path} not found and nothing is downloaded at run time; fetch "
                    f"{spec.imagenet.url} on a machine with network and place it there, or pass {option} FILE "
                    f"({option} random tries the pipeline with an untrained backbone)")
            raise VavaError(f"{option}: file {path} not found")
        net.load_state_dict({**net.state_dict(), **trunk_weights(_read_weights(path, name), net, spec, path)})
        trunk = _resnet_trunk(net, spec.layer, spec.blocks)
        identity = f"sha256:{file_sha256(path)}"
    trunk.eval().requires_grad_(False)
    return trunk, identity


def _read_weights(path: Path, name: str) -> object:
    try:
        with warnings.catch_warnings():  # torch warns about a plain pickle's protocol before refusing it
            warnings.simplefilter("ignore", UserWarning)
            return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises many types for a bad file (EOFError without a message for an empty one)
        # its message opens with paragraphs of advice; the line naming a refused global says what is wrong
        lines = [line for line in str(err).splitlines() if line.strip()]
        first = lines[0].split(". ")[0] if lines else type(err).__name__
        reason = next((line for line in lines if "GLOBAL" in line), first)
        raise VavaError(f"{option_name('weights')}: {path} is not a {name} state dict ({reason})") from None


def _flatten(tree: object, prefix: str = "") -> dict[str, torch.Tensor]:
    """The tensors of nested dicts under dotted names: {"state_dict": {"conv1.weight": t}} gives
    "state_dict.conv1.weight"."""
    if isinstance(tree, torch.Tensor):
        return {prefix[:-1]: tree}
    if not isinstance(tree, dict):
        return {}
    return {k: v for key, value in tree.items() for k, v in _flatten(value, f"{prefix}{key}.").items()}


def _kept(key: str, spec: BackboneSpec) -> bool:
    """Whether a torchvision state-dict key belongs to a module up to the cut."""
    names = ["conv1", "bn1", "layer1", "layer2", "layer3", "layer4"]
    module, _, rest = key.partition(".")
    if module == spec.layer and spec.blocks is not None:
        return int(rest.partition(".")[0]) < spec.blocks
    return module in names[: names.index(spec.layer) + 1]


# Prefixes naming the second network of a two-branch self-supervised checkpoint (MoCo's key encoder,
# MoCo v3's momentum encoder, BYOL's target); the other branch is the one trained by gradient.
_MOMENTUM_BRANCH = ("encoder_k", "momentum", "target")


def trunk_weights(state: object, net: nn.Module, spec: BackboneSpec, path: Path) -> dict[str, torch.Tensor]:
    """The tensors of `net`'s modules up to the cut, found in a loaded checkpoint, under torchvision's names.

    The network may sit under any nesting (`state_dict`, `model`, ...) and prefix (`module.`,
    `backbone.`, MoCo's `module.encoder_q.`, ...); keys past the cut (`layer4`, `fc`, projection
    heads) are ignored, as are the BatchNorm `num_batches_tracked` counters, which do not change the output.
    """
    flat = _flatten(state)
    reference = net.state_dict()
    needed = [k for k in reference if _kept(k, spec) and not k.endswith("num_batches_tracked")]
    prefixes = sorted({key[: -len(needed[0])] for key in flat if key.endswith(needed[0])
                       if key == needed[0] or key[-len(needed[0]) - 1] == "."}, key=lambda p: (len(p), p))
    complete = [p for p in prefixes if all(p + k in flat for k in needed)]
    trained = [p for p in complete if not any(branch in p for branch in _MOMENTUM_BRANCH)] or complete
    if len(trained) > 1:
        raise VavaError(f"{option_name('weights')}: {path} holds several {spec.build.__name__} networks (under "
                        f"{', '.join(p[:-1] for p in trained)}); save the one to use as a plain state dict")
    if not trained:
        prefix = max(prefixes, key=lambda p: sum(p + k in flat for k in needed), default="")
        missing = [k for k in needed if prefix + k not in flat]
        unexpected = [k[len(prefix):] for k in flat if k.startswith(prefix) and k[len(prefix):] not in reference]
        raise VavaError(f"{option_name('weights')}: {path} does not fit {spec.build.__name__}"
                        f"{f' (under {prefix[:-1]})' if prefix else ''}: {_some('missing', missing, 'keys')}, "
                        f"{_some('unexpected', unexpected)}")
    found = {k: flat[trained[0] + k] for k in needed}
    wrong = [k for k, v in found.items() if v.shape != reference[k].shape]
    if wrong:
        more = f" (and {len(wrong) - 1} more of the wrong shape)" if len(wrong) > 1 else ""
        raise VavaError(f"{option_name('weights')}: {path} does not fit {spec.build.__name__}: {wrong[0]} has shape "
                        f"{tuple(found[wrong[0]].shape)}, expected {tuple(reference[wrong[0]].shape)}{more}")
    return found


def _some(what: str, keys: list[str], noun: str = "") -> str:
    """"missing 3 keys (a, b, c, ...)": a count and the first three."""
    shown = ", ".join(keys[:3]) + (", ..." if len(keys) > 3 else "")
    return f"{what} {len(keys)}{' ' + noun if noun else ''}" + (f" ({shown})" if keys else "")


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
