"""PNG checks shared by the plot tests (stages/evaluate) and the align tests (stages/align)."""
from __future__ import annotations

from pathlib import Path

from PIL import Image

from vava.core.figures import DPI


def png_size(path: Path) -> tuple[int, int]:
    assert path.stat().st_size > 1000
    with Image.open(path) as image:
        return image.size


def pixels(size: tuple[float, float]) -> tuple[int, int]:
    return round(size[0] * DPI), round(size[1] * DPI)
