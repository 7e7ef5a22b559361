"""Drawing: the canvas of a video's frames (the scene coordinates of each frame's pixels, camera shake and
drift included), soft-edged shapes painted on it, and a video's look (colours, sizes, placement, texture)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np


@dataclass
class Canvas:
    """The frames being drawn and the scene coordinates of their pixels."""

    x: np.ndarray  # (T, 1, S) scene x of each pixel column, per frame
    y: np.ndarray  # (T, S, 1) scene y (downwards) of each pixel row, per frame
    pixel: float  # one pixel in scene units: the anti-aliasing width
    image: np.ndarray  # (T, S, S, 3) float32 RGB in [0, 1]

    @classmethod
    def blank(cls, x: np.ndarray, y: np.ndarray, pixel: float) -> Canvas:
        return cls(x, y, pixel, np.empty((x.shape[0], y.shape[1], x.shape[2], 3), dtype=np.float32))

    def paint(self, alpha: np.ndarray, colour: np.ndarray) -> None:
        """Blend `colour` over the image with coverage `alpha` (T, S, S).

        Only the block of frames, rows and columns that `alpha` touches is updated: shapes cover
        a small part of the frame, and blending is the costliest step of rendering.
        """
        window = tuple(_touched(alpha.any(axis=other)) for other in ((1, 2), (0, 2), (0, 1)))
        region = self.image[window]
        region += alpha[window][..., None] * (colour - region)

    def coverage(self, distance: np.ndarray) -> np.ndarray:
        """Soft mask from a signed distance (negative inside), one pixel wide at the edge."""
        return np.clip(0.5 - distance / self.pixel, 0.0, 1.0)


def _touched(mask: np.ndarray) -> slice:
    """The smallest slice holding every True of a 1-D mask (empty if none)."""
    hits = np.flatnonzero(mask)
    return slice(hits[0], hits[-1] + 1) if hits.size else slice(0, 0)


Param = float | np.ndarray  # a scalar, or one value per frame (T,)


def per_frame(value: Param) -> float | np.ndarray:
    """A scalar, or a (T,) per-frame parameter reshaped to (T, 1, 1) to broadcast over pixels."""
    if np.ndim(value) == 0:
        return float(value)
    return np.asarray(value, dtype=np.float32).reshape(-1, 1, 1)


def disc(canvas: Canvas, cx: Param, cy: Param, radius: Param) -> np.ndarray:
    dx, dy = canvas.x - per_frame(cx), canvas.y - per_frame(cy)
    return canvas.coverage(np.sqrt(dx * dx + dy * dy) - per_frame(radius))


def box(canvas: Canvas, cx: Param, cy: Param, half_w: Param, half_h: Param) -> np.ndarray:
    outside_x = np.abs(canvas.x - per_frame(cx)) - per_frame(half_w)
    outside_y = np.abs(canvas.y - per_frame(cy)) - per_frame(half_h)
    return canvas.coverage(np.maximum(outside_x, outside_y))


def capsule(canvas: Canvas, a: tuple[Param, Param], b: tuple[Param, Param], radius: float) -> np.ndarray:
    """A segment from point a to point b with round ends."""
    ax, ay, bx, by = (per_frame(v) for v in (*a, *b))
    px, py = canvas.x - ax, canvas.y - ay
    vx, vy = bx - ax, by - ay
    along = np.clip((px * vx + py * vy) / (vx * vx + vy * vy + 1e-12), 0.0, 1.0)
    dx, dy = px - along * vx, py - along * vy
    return canvas.coverage(np.sqrt(dx * dx + dy * dy) - radius)


class Texture(NamedTuple):
    """A smooth random pattern: a few plane waves, tinted."""

    amplitude: np.ndarray  # (K,)
    frequency: np.ndarray  # (K, 2) cycles per scene unit, along x and y
    phase: np.ndarray  # (K,)
    tint: np.ndarray  # (3,)


@dataclass(frozen=True)
class Look:
    background: np.ndarray  # (3,)
    colours: np.ndarray  # (4, 3): primary, secondary, structure, accent
    scale: float  # object size factor
    zoom: float  # scene scale in the frame
    offset: tuple[float, float]  # scene centre offset, in frame widths
    texture: Texture


_BASE_BACKGROUND = np.array([0.86, 0.86, 0.83], dtype=np.float32)
_BASE_COLOURS = np.array(
    [[0.85, 0.30, 0.20], [0.20, 0.45, 0.80], [0.22, 0.22, 0.27], [0.95, 0.75, 0.20]], dtype=np.float32
)


def random_texture(rng: np.random.Generator, amplitude: float, waves: int = 3) -> Texture:
    return Texture(
        amplitude=(amplitude * rng.uniform(0.5, 1.0, waves)).astype(np.float32),
        frequency=rng.uniform(-4.0, 4.0, (waves, 2)).astype(np.float32),
        phase=rng.uniform(0.0, 2 * np.pi, waves).astype(np.float32),
        tint=rng.uniform(-1.0, 1.0, 3).astype(np.float32),
    )


def draw_look(strength: float, rng: np.random.Generator) -> Look:
    """Colours, sizes and placement; every draw is made whatever the strength."""
    background = _BASE_BACKGROUND + strength * rng.uniform(-0.35, 0.35, 3)
    colours = _BASE_COLOURS + strength * rng.uniform(-0.35, 0.35, (4, 3))
    scale = 1.0 + strength * rng.uniform(-0.25, 0.25)
    zoom = 1.0 + strength * rng.uniform(-0.2, 0.2)
    offset = strength * rng.uniform(-0.08, 0.08, 2)
    return Look(
        background=np.clip(background, 0, 1).astype(np.float32),
        colours=np.clip(colours, 0, 1).astype(np.float32),
        scale=float(scale),
        zoom=float(zoom),
        offset=(float(offset[0]), float(offset[1])),
        texture=random_texture(rng, 0.25 * strength),
    )


def scene_coordinates(
    frames: int, size: int, look: Look, jitter: float, rng: np.random.Generator, drift: np.ndarray | float = 0.0
) -> tuple[np.ndarray, np.ndarray]:
    """Per-frame scene coordinates of pixel columns (T, 1, S) and rows (T, S, 1), camera shake (and a
    (2, T) `drift` of the camera) included."""
    shake = np.clip(rng.standard_normal((2, frames)), -3, 3) * (0.05 * jitter) + drift
    centred = ((np.arange(size) + 0.5) / size - 0.5).astype(np.float32)
    x = (centred[None, None, :] - (look.offset[0] + shake[0])[:, None, None]) / look.zoom + 0.5
    y = (centred[None, :, None] - (look.offset[1] + shake[1])[:, None, None]) / look.zoom + 0.5
    return x.astype(np.float32), y.astype(np.float32)


def fill_backdrop(canvas: Canvas, colour: np.ndarray, texture: Texture) -> None:
    """Flat colour plus the texture pattern.

    Each wave is sin(a + b) with a from x and b from y, i.e. sin a cos b + cos a sin b: a sum of
    outer products of (T, S, 1) and (T, 1, S) factors, so one batched matmul gives the (T, S, S) pattern.
    """
    if not texture.amplitude.any():
        canvas.image[...] = colour
        return
    a = (2 * np.pi * texture.frequency[:, :1]) * canvas.x + texture.phase[:, None]  # (T, K, S)
    b = canvas.y * (2 * np.pi * texture.frequency[:, 1])  # (T, S, K)
    amplitude = texture.amplitude[:, None]
    rows = np.concatenate([np.cos(b), np.sin(b)], axis=2)
    columns = np.concatenate([amplitude * np.sin(a), amplitude * np.cos(a)], axis=1)
    np.multiply((rows @ columns)[..., None], texture.tint, out=canvas.image)
    canvas.image += colour


def camera_drift(frames: int, jitter: float, rng: np.random.Generator) -> np.ndarray:
    """(2, T) slow camera drift: two low-frequency sinusoids per axis, up to about 0.1 x `jitter` of the frame."""
    cycles = rng.uniform(0.3, 1.5, (2, 2, 1)) * np.linspace(0, 1, frames)  # (axis, wave, T)
    offsets = rng.uniform(0, 2 * np.pi, (2, 2, 1))
    return 0.05 * jitter * np.sin(2 * np.pi * cycles + offsets).sum(axis=1)
