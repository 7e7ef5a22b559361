"""Decoding video files and frame folders, frame resampling and preprocessing; frames linked outside the dataset
root and FIFOs refused."""
from __future__ import annotations

import os
import threading
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from tests.conftest import moving_square, write_entry
from vava.core.decode import VideoDecoder, frame_files, is_kept, kept_mask
from vava.core.errors import VavaError
from vava.core.preprocess import IMAGENET_MEAN, IMAGENET_STD, Preprocessing
from vava.core.records import VideoRecord
from vava.core.videoio import write_video
from vava.pipeline.datasets.folder import load_folder


def record(path: Path, frames: int, fps: float | None = None) -> VideoRecord:
    return VideoRecord(id="v", path=path, split="train", action="a", labels=np.zeros(frames, np.int64), fps=fps)


def decode_all(decoder: VideoDecoder) -> tuple[torch.Tensor, np.ndarray]:
    chunks = list(decoder)
    return torch.cat([c.frames for c in chunks]), np.concatenate([c.indices for c in chunks])


@pytest.mark.parametrize(("source", "target"), [(30.0, 10.0), (29.97, 10.0), (25.0, 10.0), (24.0, 7.3),
                                                (30000 / 1001, 15.0), (10.0, 30.0), (30.0, None), (None, 10.0)])
def test_kept_mask_is_is_kept_for_every_frame(source: float | None, target: float | None) -> None:
    mask = kept_mask(1000, source, target)
    assert mask.tolist() == [is_kept(i, source, target) for i in range(1000)]
    assert kept_mask(0, source, target).shape == (0,)


def test_is_kept_resamples_evenly() -> None:
    kept = [i for i in range(12) if is_kept(i, 30.0, 10.0)]
    assert kept == [0, 3, 6, 9]
    kept = [i for i in range(10) if is_kept(i, 25.0, 10.0)]  # 10/25: counts floor(0.4 i) move at 0, 3, 5, 8
    assert kept == [0, 3, 5, 8]
    assert all(is_kept(i, 10.0, 30.0) for i in range(5))  # never upsample
    assert all(is_kept(i, 30.0, None) for i in range(5))


def test_decode_video_file_in_chunks(tmp_path: Path) -> None:
    frames = moving_square(23, seed=0)
    write_video(tmp_path / "v.mp4", frames, fps=15)
    decoder = VideoDecoder(record(tmp_path / "v.mp4", 23), chunk_frames=8)
    chunks = list(decoder)
    assert [len(c.indices) for c in chunks] == [8, 8, 7]
    decoded, indices = decode_all(VideoDecoder(record(tmp_path / "v.mp4", 23), chunk_frames=8))
    assert decoder.decoded_frames == 23 and decoder.source_fps == 15.0
    assert indices.tolist() == list(range(23))
    assert decoded.dtype == torch.uint8 and decoded.shape == (23, 3, 64, 64)
    # lossy but in order: each decoded frame is far closer to its source than to the mirrored one
    error = (decoded.permute(0, 2, 3, 1).float() - torch.from_numpy(frames).float()).abs().mean(dim=(1, 2, 3))
    mirrored = (decoded.permute(0, 2, 3, 1).float() - torch.from_numpy(frames[::-1].copy()).float()).abs().mean(dim=(1, 2, 3))
    assert error.max() < 16.0
    assert (error[:8] < mirrored[:8] / 2).all()


def test_decode_with_target_fps(tmp_path: Path) -> None:
    write_video(tmp_path / "v.mp4", moving_square(30, seed=1), fps=30)
    decoder = VideoDecoder(record(tmp_path / "v.mp4", 30), chunk_frames=4, target_fps=10)
    _, indices = decode_all(decoder)
    assert indices.tolist() == list(range(0, 30, 3))
    assert decoder.decoded_frames == 30


def write_png(chw: torch.Tensor, path: str) -> None:
    Image.fromarray(chw.permute(1, 2, 0).numpy()).save(path)


def test_frame_folder_natural_order_and_exact_pixels(tmp_path: Path) -> None:
    folder = tmp_path / "frames"
    folder.mkdir()
    frames = moving_square(12, seed=2)
    for i, frame in enumerate(frames):  # frame10 must come after frame9, not after frame1
        write_png(torch.from_numpy(frame).permute(2, 0, 1).contiguous(), str(folder / f"frame{i}.png"))
    (folder / "notes.txt").write_text("ignored")
    assert [p.name for p in frame_files(folder)][:3] == ["frame0.png", "frame1.png", "frame2.png"]
    decoded, indices = decode_all(VideoDecoder(record(folder, 12), chunk_frames=5))
    assert indices.tolist() == list(range(12))
    assert torch.equal(decoded, torch.from_numpy(frames).permute(0, 3, 1, 2))  # PNG is lossless


def test_unreadable_frame_is_named(tmp_path: Path) -> None:
    folder = tmp_path / "frames"
    folder.mkdir()
    write_png(torch.zeros(3, 8, 8, dtype=torch.uint8), str(folder / "000001.png"))
    (folder / "000002.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(VavaError, match=r"video 'v': cannot decode frame .*000002.jpg"):
        list(VideoDecoder(record(folder, 2)))


@pytest.mark.parametrize(
    ("content", "message"),
    [(None, r"video 'v': file not found"),
     (b"", r"video 'v': (cannot decode|no frames could be decoded)"),
     (b"\x00\x01garbage" * 100, r"video 'v': cannot decode")],
)
def test_bad_video_files(tmp_path: Path, content: bytes | None, message: str) -> None:
    path = tmp_path / "v.mp4"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(VavaError, match=message):
        list(VideoDecoder(record(path, 5)))


def test_resampling_needs_fps_for_frame_folders(tmp_path: Path) -> None:
    folder = tmp_path / "frames"
    folder.mkdir()
    write_png(torch.zeros(3, 8, 8, dtype=torch.uint8), str(folder / "1.png"))
    with pytest.raises(VavaError, match="frame rate unknown"):
        list(VideoDecoder(record(folder, 1), target_fps=5))


def test_preprocessing_normalises_and_resizes() -> None:
    grey = torch.full((2, 3, 48, 80), 128, dtype=torch.uint8)
    out = Preprocessing(image_size=32)(grey)
    assert out.shape == (2, 3, 32, 32) and out.dtype == torch.float32
    expected = (128 / 255 - torch.tensor(IMAGENET_MEAN)) / torch.tensor(IMAGENET_STD)
    assert torch.allclose(out.mean(dim=(0, 2, 3)), expected, atol=1e-5)


def test_center_crop_keeps_the_middle() -> None:
    image = torch.zeros((1, 3, 32, 64), dtype=torch.uint8)
    image[..., 16:48] = 255  # a white middle band as wide as the frame is tall
    stretched = Preprocessing(image_size=32, resize="stretch")(image)
    cropped = Preprocessing(image_size=32, resize="center_crop")(image)
    white = (1 - IMAGENET_MEAN[0]) / IMAGENET_STD[0]
    assert torch.allclose(cropped[0, 0], torch.full((32, 32), white), atol=1e-4)  # only the band survives
    assert stretched[0, 0, :, 0].max() < 0  # stretching keeps the black borders


# -- what is refused: frames linked outside the dataset root, a FIFO given as a video --------------


def test_a_frame_linked_to_outside_the_root_is_not_read(tmp_path: Path) -> None:
    root = tmp_path / "data"
    frames = root / "frames"
    frames.mkdir(parents=True)
    for i, frame in enumerate(moving_square(4, seed=0)):
        Image.fromarray(frame).save((frames if i else tmp_path) / f"{i:04d}.png")
    (frames / "0000.png").symlink_to(tmp_path / "0000.png")
    write_entry(root, path="frames", labels=[0, 0, 1, 1], phases=["a", "b"], background_label=None)
    [record] = load_folder(root)
    with pytest.raises(VavaError, match=r"video 'a': .*0000.png leads outside the dataset root"):
        list(VideoDecoder(record))
    [allowed] = load_folder(root, allow_outside_root=True)
    assert sum(len(chunk.indices) for chunk in VideoDecoder(allowed)) == 4


def test_a_fifo_given_as_a_video_is_refused_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "video.mp4"
    os.mkfifo(fifo)
    record = VideoRecord(id="f", path=fifo, split="train", action="x", labels=np.zeros(4, dtype=np.int64))
    outcome: list[BaseException] = []

    def decode() -> None:
        try:
            list(VideoDecoder(record))
        except BaseException as err:
            outcome.append(err)

    thread = threading.Thread(target=decode, daemon=True)
    thread.start()
    thread.join(timeout=20)
    if thread.is_alive():  # release the blocked reader so the daemon thread can end
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
    assert not thread.is_alive(), "decoding a FIFO blocked"
    assert len(outcome) == 1 and isinstance(outcome[0], VavaError)
    assert str(outcome[0]) == (f"video 'f': {fifo} is not a regular file or a folder of frames "
                               "(FIFOs and devices are not read)")
