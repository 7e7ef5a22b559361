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

from vava.core.errors import ConfigError, VavaError, option_name
from vava.core.files import check_regular, open_regular


def sequential_trunk(net: nn.Module, cut: str) -> nn.Sequential:
    """The children of `net` in order, up to and including `cut`: a child's name (`layer3`: all of it), or
    `child.N` for the first N + 1 blocks of a sequential child (`layer3.2`: three blocks). Fits networks
    whose forward runs their children one after the other up to the cut, as torchvision's ResNets do."""
    name, _, block = cut.partition(".")
    names = [child for child, _ in net.named_children()]
    if name not in names:
        raise ValueError(f"{type(net).__name__} has no child {name!r} (its children: {', '.join(names)})")
    kept = [getattr(net, child) for child in names[: names.index(name) + 1]]
    if block:
        kept[-1] = kept[-1][: int(block) + 1]
    return nn.Sequential(*kept)


@dataclass(frozen=True)
class BackboneSpec:
    """An image network cut after the module `cut` (named as in its state dict: `layer3.2`, `layer3`).

    `build()` makes the whole network, freshly initialised; `trunk(net, cut)` is the part of it that runs,
    sharing its modules (`sequential_trunk` by default; another architecture brings its own). `channels`
    and `stride` describe the maps the trunk gives; `imagenet` is the torchvision weights that
    `--weights imagenet` reads (None for a network without any).
    """

    build: Callable[[], nn.Module]
    cut: str
    channels: int
    stride: int
    imagenet: models.WeightsEnum | None = None
    trunk: Callable[[nn.Module, str], nn.Module] = sequential_trunk


# conv4 per Table 9 of the VAVA supplement: 3 bottleneck blocks, i.e. the third block of torchvision's ResNet-50
# `layer3` (TCC's `conv4_block3_out`), 1024 channels at stride 16. `resnet50-layer3` keeps all 6 blocks of layer3;
# ResNet-18's layer3 has only 2 blocks, so it is kept whole.
BACKBONES: dict[str, BackboneSpec] = {
    "resnet50": BackboneSpec(models.resnet50, "layer3.2", 1024, 16, models.ResNet50_Weights.IMAGENET1K_V1),
    "resnet50-layer3": BackboneSpec(models.resnet50, "layer3", 1024, 16, models.ResNet50_Weights.IMAGENET1K_V1),
    "resnet18": BackboneSpec(models.resnet18, "layer3", 256, 16, models.ResNet18_Weights.IMAGENET1K_V1),
}


def backbone_with_cut(name: str, cut: str) -> str:
    """The registered backbone of the same network as `name` cut at `cut` (a feature set records both):
    `resnet50` at `layer3` is `resnet50-layer3`, the cut `resnet50` had before it moved to `layer3.2`."""
    spec = BACKBONES.get(name)
    found = [other for other, s in BACKBONES.items() if spec and s.build == spec.build and s.cut == cut]
    if not found:
        raise VavaError(f"no registered backbone is {name} cut at {cut!r} (known: "
                        f"{', '.join(f'{n} at {s.cut}' for n, s in BACKBONES.items())})")
    return found[0]


def imagenet_weights_path(name: str) -> Path:
    """Where torch's hub cache keeps the ImageNet weights of backbone `name`."""
    weights = BACKBONES[name].imagenet
    if weights is None:
        raise ConfigError("weights", f"backbone {name} has no ImageNet weights; use random or a weights file")
    return Path(torch.hub.get_dir()) / "checkpoints" / weights.url.rsplit("/", 1)[-1]


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
    trunk = spec.trunk(net, spec.cut)  # shares net's modules: weights loaded into net are the trunk's
    if weights == "random":
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
        found = trunk_weights(_read_weights(path, name), net, trunk, spec, path)
        net.load_state_dict({**net.state_dict(), **found})
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


# Prefixes naming the second network of a two-branch self-supervised checkpoint (MoCo's key encoder,
# MoCo v3's momentum encoder, BYOL's target); the other branch is the one trained by gradient.
_MOMENTUM_BRANCH = ("encoder_k", "momentum", "target")


def trunk_weights(state: object, net: nn.Module, trunk: nn.Module, spec: BackboneSpec,
                  path: Path) -> dict[str, torch.Tensor]:
    """The tensors of `net` that its `trunk` runs with, found in a loaded checkpoint, under `net`'s names.

    The network may sit under any nesting (`state_dict`, `model`, ...) and prefix (`module.`,
    `backbone.`, MoCo's `module.encoder_q.`, ...); keys past the cut (`layer4`, `fc`, projection
    heads) are ignored, as are the BatchNorm `num_batches_tracked` counters, which do not change the output.
    """
    flat = _flatten(state)
    reference = net.state_dict()
    in_trunk = {id(tensor) for tensor in trunk.state_dict(keep_vars=True).values()}
    needed = [k for k, tensor in net.state_dict(keep_vars=True).items()
              if id(tensor) in in_trunk and not k.endswith("num_batches_tracked")]
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
