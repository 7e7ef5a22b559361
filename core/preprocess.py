"""Turning decoded uint8 frames into normalised backbone input."""
from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torchvision.transforms.v2 import functional as TF

from vava.core.validation import Rule, checked, integer, is_real, one_of, validate

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
RESIZE_MODES = ("stretch", "center_crop")
_PER_CHANNEL = Rule(lambda v: isinstance(v, tuple) and len(v) == 3 and all(map(is_real, v)), "three finite numbers")


@dataclass(frozen=True)
class Preprocessing:
    """Resize to `image_size` (stretch both sides, as TCC does, or shorter side + centre crop),
    scale to [0, 1] and normalise with the ImageNet mean and std."""

    image_size: int = checked(integer(1), 224)
    resize: str = checked(one_of(*RESIZE_MODES), "stretch")
    mean: tuple[float, float, float] = checked(_PER_CHANNEL, IMAGENET_MEAN)
    std: tuple[float, float, float] = checked(_PER_CHANNEL, IMAGENET_STD)

    def __post_init__(self) -> None:
        validate(self)

    def describe(self) -> dict:
        return {**asdict(self), "interpolation": "bilinear-antialias"}

    def __call__(self, frames: torch.Tensor) -> torch.Tensor:
        """uint8 (n, 3, H, W) -> float32 (n, 3, S, S)."""
        size = self.image_size
        images = frames.float().div_(255.0)
        if self.resize == "center_crop":
            images = TF.resize(images, size, antialias=True)
            images = TF.center_crop(images, [size, size])
        else:
            images = TF.resize(images, [size, size], antialias=True)
        return TF.normalize(images, list(self.mean), list(self.std))
