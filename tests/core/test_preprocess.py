"""Preprocessing: geometry of both resize modes, the uint8 scaler (FFmpeg for video files, torchvision's uint8 kernel
for images) against the float one it replaces as the default, and how the choice is described."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision.transforms.v2 import functional as TF

from vava.core.decode import VideoDecoder
from vava.core.preprocess import IMAGENET_STD, Preprocessing
from vava.core.records import VideoRecord
from vava.core.videoio import write_video

# one 8-bit step of a pixel, after normalisation by the smallest ImageNet std
STEP = 1 / 255 / min(IMAGENET_STD)
SIZES = [(48, 80), (80, 48), (36, 100), (64, 64), (1080, 1920)]


def record(path: Path, frames: int, fps: float | None = 15.0) -> VideoRecord:
    return VideoRecord(id="v", path=path, split="train", action="a", labels=np.zeros(frames, np.int64), fps=fps)


def decoded(path: Path, frames: int, preprocessing: Preprocessing, fps: float | None = None) -> torch.Tensor:
    """The backbone input of a video as `extract` makes it (the decoder scales when the preprocessing does)."""
    chunks = VideoDecoder(record(path, frames), chunk_frames=4, target_fps=fps, preprocessing=preprocessing)
    return torch.cat([preprocessing(chunk.frames) for chunk in chunks])


def smooth_frames(count: int, height: int, width: int, colour: bool = True) -> np.ndarray:
    """(count, height, width, 3) uint8 of slow sine waves (nothing a bilinear resize could alias)."""
    y, x = np.mgrid[0:height, 0:width] / max(height, width) * 2 * np.pi
    frames = []
    for t in range(count):
        red = 128 + 100 * np.sin(x + t)
        channels = [red, 128 + 100 * np.cos(y), 128 + 60 * np.sin(2 * (x + y))] if colour else [red] * 3
        frames.append(np.stack(channels, axis=-1))
    return np.clip(np.round(frames), 0, 255).astype(np.uint8)


@pytest.mark.parametrize("size", SIZES)
def test_resized_size_is_torchvisions_and_every_path_ends_square(size: tuple[int, int]) -> None:
    frames = torch.zeros((2, 3, *size), dtype=torch.uint8)
    for scaler in ("uint8", "float"):
        stretch, crop = (Preprocessing(32, mode, scaler=scaler) for mode in ("stretch", "center_crop"))
        assert crop.resized_size(*size) == tuple(TF.resize(frames, 32).shape[-2:])  # shorter side 32
        assert stretch.resized_size(*size) == (32, 32)
        for preprocessing in (stretch, crop):
            out = preprocessing(frames)
            assert out.shape == (2, 3, 32, 32) and out.dtype == torch.float32


@pytest.mark.parametrize("scaler", ["uint8", "float"])
def test_center_crop_takes_the_middle_columns_and_rows(scaler: str) -> None:
    # pixel value = column (wide frame) or row (tall frame): no resize happens (the shorter side is 32), so the crop
    # must keep exactly the middle 32 of 96: columns (rows) 32..63, round((96 - 32) / 2) = 32 being the first
    wide = torch.arange(96, dtype=torch.uint8).expand(1, 3, 32, 96)
    tall = wide.transpose(-1, -2)
    preprocessing = Preprocessing(32, "center_crop", mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0), scaler=scaler)
    middle = torch.arange(32, 64, dtype=torch.float32) / 255
    assert torch.equal(preprocessing(wide)[0, 0], middle.expand(32, 32))
    assert torch.equal(preprocessing(tall)[0, 0], middle[:, None].expand(32, 32))


def test_uint8_scaler_on_images_is_torchvisions_uint8_kernel_then_normalisation() -> None:
    frames = torch.from_numpy(smooth_frames(2, 90, 160)).permute(0, 3, 1, 2).contiguous()
    preprocessing = Preprocessing(32, "center_crop")
    by_hand = TF.center_crop(TF.resize(frames, [32, 56], antialias=True), [32, 32])  # 160 * 32 / 90 = 56.9 -> 56
    assert torch.equal(preprocessing.scale(frames), by_hand)
    assert torch.equal(preprocessing(frames), TF.normalize(by_hand.float() / 255, list(preprocessing.mean),
                                                           list(preprocessing.std)))


@pytest.mark.parametrize("resize", ["stretch", "center_crop"])
def test_both_scalers_give_identical_arrays_when_the_source_has_the_target_size(tmp_path: Path, resize: str) -> None:
    write_video(tmp_path / "v.mp4", smooth_frames(5, 64, 64), fps=15)
    folder = tmp_path / "frames"
    folder.mkdir()
    for i, frame in enumerate(smooth_frames(3, 64, 64)):
        Image.fromarray(frame).save(folder / f"{i}.png")
    for path, frames in ((tmp_path / "v.mp4", 5), (folder, 3)):
        uint8, float_ = (decoded(path, frames, Preprocessing(64, resize, scaler=s)) for s in ("uint8", "float"))
        assert uint8.shape == (frames, 3, 64, 64) and torch.equal(uint8, float_)


def colour_blocks(count: int, height: int, width: int) -> np.ndarray:
    """(count, height, width, 3) uint8 of saturated random colours in 16-pixel blocks (sharp colour edges)."""
    rng = np.random.default_rng(0)
    blocks = rng.choice(np.array([0, 255], dtype=np.uint8), size=(count, height // 16, width // 16, 3))
    return blocks.repeat(16, axis=1).repeat(16, axis=2)


@pytest.mark.parametrize(("content", "frames", "max_steps"), [
    ("grey", smooth_frames(3, 144, 256, colour=False), 2.0),
    ("colour", smooth_frames(3, 144, 256), 2.0),
    ("saturated blocks", colour_blocks(3, 144, 256), 8.0)])
def test_uint8_scaler_stays_close_to_the_float_path(tmp_path: Path, content: str, frames: np.ndarray,
                                                    max_steps: float) -> None:
    """Both resize RGB frames bilinearly with antialiasing (FFmpeg's swscale after the full-size RGB conversion,
    with a kernel close to torchvision's), so on smooth content they differ by the rounding of the uint8 result.
    Measured, in steps of 1/255 over the smallest std, 144x256 -> 64: mean 0.13-0.27 everywhere; max 1.2 on the
    smooth frames, 5.7 at the sharp edges of the blocks with centre crop (256 -> 113 columns: the two kernels'
    weights differ a little at such fractional scales). Resizing the YUV planes before the conversion instead gave
    max 8.4 steps on the smooth colour frames and tens of steps at saturated edges."""
    write_video(tmp_path / "v.mp4", frames, fps=15, crf=1)
    for resize in ("stretch", "center_crop"):
        uint8, float_ = (decoded(tmp_path / "v.mp4", 3, Preprocessing(64, resize, scaler=s)) for s in ("uint8", "float"))
        difference = (uint8 - float_).abs() / STEP
        assert difference.mean() < 0.5 and difference.max() < max_steps, (content, resize)


def test_frame_rate_resampling_keeps_the_same_frames_when_scaling(tmp_path: Path) -> None:
    write_video(tmp_path / "v.mp4", smooth_frames(30, 48, 80), fps=30)
    for preprocessing in (None, Preprocessing(32, "center_crop")):
        decoder = VideoDecoder(record(tmp_path / "v.mp4", 30), chunk_frames=4, target_fps=10,
                               preprocessing=preprocessing)
        chunks = list(decoder)
        assert np.concatenate([c.indices for c in chunks]).tolist() == list(range(0, 30, 3))
        assert decoder.decoded_frames == 30 and decoder.source_fps == 30.0
        side = (48, 80) if preprocessing is None else (32, 32)
        assert [tuple(c.frames.shape) for c in chunks] == [(4, 3, *side), (4, 3, *side), (2, 3, *side)]


def test_the_description_names_the_scaler_and_decoder_only_away_from_the_old_values() -> None:
    old = {"image_size": 32, "resize": "stretch", "mean": (0.485, 0.456, 0.406), "std": (0.229, 0.224, 0.225),
           "interpolation": "bilinear-antialias"}
    assert Preprocessing(32, scaler="float").describe() == old  # what every set extracted before records
    assert Preprocessing(32).describe() == {**old, "scaler": "uint8", "interpolation": "bilinear-antialias"}
    assert Preprocessing(32, decoder="torchcodec").describe() == {
        **old, "scaler": "uint8", "decoder": "torchcodec", "interpolation": "bilinear-antialias"}
