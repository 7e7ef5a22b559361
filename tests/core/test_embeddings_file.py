"""The embeddings file's flags (core/embeddings_file.py): written and read back, zeros in older files,
kept aligned when background is dropped, validated with the video named; identity kinds of a file's attrs."""
from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import h5py
import numpy as np
import pytest

from vava.core.embeddings_file import EmbeddingsWriter, identity_kind, load_embeddings
from vava.core.errors import VavaError

VIDEO = SimpleNamespace(id="v1", split="val", action="a", fps=15.0, phases=("bg", "p0", "p1"), background_label=0)
LABELS = np.array([1, 0, 2, 0, 1])


def write(path: Path, flags: np.ndarray) -> Path:
    with EmbeddingsWriter(path, {"embedder": "trained"}) as writer:
        writer.add(VIDEO, np.arange(10, dtype=np.float32).reshape(5, 2), LABELS, np.arange(5), flags)
    return path


def test_flags_round_trip_and_stay_aligned_without_background(tmp_path: Path) -> None:
    flags = np.array([4, 1, 2, 1, 6], dtype=np.uint8)
    path = write(tmp_path / "e.h5", flags)
    kept = load_embeddings(path).videos[0]
    assert kept.flags.dtype == np.uint8 and kept.flags.tolist() == [4, 1, 2, 1, 6]
    dropped = load_embeddings(path, background="drop").videos[0]
    assert dropped.labels.tolist() == [0, 1, 0] and dropped.flags.tolist() == [4, 2, 6]
    assert dropped.embeddings[:, 0].tolist() == [0.0, 4.0, 8.0]


def test_files_without_flags_read_as_zeros(tmp_path: Path) -> None:
    path = write(tmp_path / "e.h5", np.zeros(5, dtype=np.uint8))
    with h5py.File(path, "r+") as handle:
        del handle["videos/v1/flags"]
    flags = load_embeddings(path).videos[0].flags
    assert flags.dtype == np.uint8 and flags.tolist() == [0] * 5


def test_bad_flags_are_refused_naming_the_video(tmp_path: Path) -> None:
    with pytest.raises(VavaError, match=r"video 'v1': flags must be a \(5,\) uint8 array, got int64 of shape \(5,\)"):
        write(tmp_path / "a.h5", np.zeros(5, dtype=np.int64))
    with pytest.raises(VavaError, match=r"flags must be a \(5,\) uint8 array, got uint8 of shape \(4,\)"):
        write(tmp_path / "b.h5", np.zeros(4, dtype=np.uint8))
    assert not (tmp_path / "a.h5").exists()  # an error inside the writer leaves no file
    path = write(tmp_path / "c.h5", np.zeros(5, dtype=np.uint8))
    with h5py.File(path, "r+") as handle:
        del handle["videos/v1/flags"]
        handle["videos/v1/flags"] = np.zeros(5, dtype=np.int16)
    with pytest.raises(VavaError, match=r"c.h5: video 'v1': flags must be a \(5,\) uint8 array, found int16"):
        load_embeddings(path)


def test_identity_kind() -> None:
    assert identity_kind({"embedder": "trained", "identity_kind": "time"}) is None
    assert identity_kind({"embedder": "identity", "identity_kind": "time"}) == "time"
    assert identity_kind({"embedder": "identity"}) == "features"  # files written before kinds


def test_an_id_starting_with_two_underscores_round_trips(tmp_path: Path) -> None:
    path = tmp_path / "e.h5"
    with EmbeddingsWriter(path, {"embedder": "trained"}) as writer:
        for video_id in ("__9c5VYjqsw", "%5F_9c5VYjqsw"):
            writer.add(SimpleNamespace(**{**VIDEO.__dict__, "id": video_id}), np.ones((5, 2), np.float32), LABELS,
                       np.arange(5), np.zeros(5, np.uint8))
    assert sorted(v.id for v in load_embeddings(path).videos) == ["%5F_9c5VYjqsw", "__9c5VYjqsw"]
