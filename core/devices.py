"""Choosing the torch device from a `--device` option."""
from __future__ import annotations

import torch

from vava.core.errors import VavaError, option_name


def resolve_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise VavaError(f"{option_name('device')}: {device} asked for but no CUDA device is available")
    try:
        return torch.device(device)
    except RuntimeError:
        raise VavaError(f"{option_name('device')}: {device!r} is not a device (use auto, cpu or cuda)") from None
