"""Turning decoded uint8 frames into normalised backbone input."""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import ClassVar

import torch
from torchvision.transforms.v2 import functional as TF

from vava.core.validation import Rule, checked, integer, is_real, one_of, validate

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
RESIZE_MODES = ("stretch", "center_crop")
# uint8: resize the 8-bit RGB frames (in FFmpeg while decoding video files), then convert to float;
# float: convert full-size frames to float, then resize (every set extracted before the choice existed)
SCALERS = ("uint8", "float")
DECODERS = ("pyav", "torchcodec")
_PER_CHANNEL = Rule(lambda v: isinstance(v, tuple) and len(v) == 3 and all(map(is_real, v)), "three finite numbers")


@dataclass(frozen=True)
class Preprocessing:
    """Resize to `image_size` (stretch both sides, as TCC does, or shorter side + centre crop),
    scale to [0, 1] and normalise with the ImageNet mean and std.

    `scaler` says where the resize runs: `uint8` on the 8-bit RGB frames, before any float conversion
    (FFmpeg's swscale while decoding a video file, torchvision's uint8 kernel for images), or `float`
    on full-size float frames. Both are bilinear with antialiasing and keep the same geometry; their
    values differ by about the rounding to 8 bits when the size changes and are identical when it
    does not. `decoder` is the library that decodes video files (recorded, as another library or
    FFmpeg build may give other values).
    """

    # Keys added after feature sets had been extracted, with the value those sets had: `describe` leaves
    # a key out at that value, so their fingerprints stay as they were, and a stored mapping without it reads so.
    UNSTATED: ClassVar[dict[str, str]] = {"scaler": "float", "decoder": "pyav"}

    image_size: int = checked(integer(1), 224)
    resize: str = checked(one_of(*RESIZE_MODES), "stretch")
    mean: tuple[float, float, float] = checked(_PER_CHANNEL, IMAGENET_MEAN)
    std: tuple[float, float, float] = checked(_PER_CHANNEL, IMAGENET_STD)
    scaler: str = checked(one_of(*SCALERS), "uint8")
    decoder: str = checked(one_of(*DECODERS), "pyav")

    def __post_init__(self) -> None:
        validate(self)

    def describe(self) -> dict:
        described = {**asdict(self), "interpolation": "bilinear-antialias"}
        for key, value in self.UNSTATED.items():
            if described[key] == value:
                del described[key]
        return described

    @property
    def scales_uint8(self) -> bool:
        return self.scaler == "uint8"

    def resized_size(self, height: int, width: int) -> tuple[int, int]:
        """(height, width) a `height` x `width` frame is resized to before the centre crop (torchvision's
        rule: the shorter side becomes `image_size`, the longer one is rounded down)."""
        size = self.image_size
        if self.resize == "stretch":
            return size, size
        if height <= width:
            return size, int(size * width / height)
        return int(size * height / width), size

    def crop(self, frames: torch.Tensor) -> torch.Tensor:
        """The centre `image_size` square of resized frames (..., h, w) (a view; unchanged when stretched)."""
        if self.resize == "stretch":
            return frames
        return TF.center_crop(frames, [self.image_size, self.image_size])

    def scale(self, frames: torch.Tensor) -> torch.Tensor:
        """uint8 (n, 3, H, W) -> uint8 (n, 3, S, S) with torchvision's uint8 kernel; frames already resized
        (by FFmpeg, to `resized_size`) are only cropped, frames of the final size come back as they are."""
        size = self.resized_size(*frames.shape[-2:])
        if tuple(frames.shape[-2:]) != size:
            frames = TF.resize(frames, list(size), antialias=True)
        return self.crop(frames)

    def __call__(self, frames: torch.Tensor) -> torch.Tensor:
        """uint8 (n, 3, H, W) -> float32 (n, 3, S, S)."""
        if self.scales_uint8:
            images = self.scale(frames).float().div_(255.0)
        else:
            images = frames.float().div_(255.0)
            size = self.image_size
            images = self.crop(TF.resize(images, size if self.resize == "center_crop" else [size, size],
                                         antialias=True))
        return TF.normalize(images, list(self.mean), list(self.std))
