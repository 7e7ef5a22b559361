"""Tiny embeddings.h5 files, in the layout `vava embed` writes, for the evaluation tests (flags only when given)."""
from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np

from vava.core.embeddings_file import VideoEmbeddings

PHASES = ["p0", "p1", "p2"]


def video(id: str, x, y, split: str = "val", action: str = "a", phases=PHASES, bg: int = -1, flags=None) -> dict:
    y = np.asarray(y, dtype=np.int64)
    return {"id": id, "x": np.asarray(x, dtype=np.float32).reshape(len(y), -1), "y": y, "split": split,
            "action": action, "phases": phases, "bg": bg, "flags": flags}


def write_h5(path: Path, videos: list[dict]) -> Path:
    """An embeddings.h5 in the layout `vava embed` writes."""
    with h5py.File(path, "w") as handle:
        handle.attrs.update({"run": "runs/toy", "embedder": "trained", "checkpoint": "runs/toy/checkpoints/last.pt",
                             "step": 3, "objective": "vava", "feature_set": "cache/toy", "fingerprint": "toy",
                             "splits": "train,val", "created": "2024-01-01T00:00:00+00:00"})
        for v in videos:
            group = handle.create_group(f"videos/{v['id']}")
            group.create_dataset("embeddings", data=v["x"])
            group.create_dataset("labels", data=v["y"])
            group.create_dataset("frame_index", data=np.arange(len(v["y"])))
            if v.get("flags") is not None:
                group.create_dataset("flags", data=np.asarray(v["flags"], dtype=np.uint8))
            group.attrs.update({"id": v["id"], "split": v["split"], "action": v["action"], "fps": 15.0,
                                "phases": v["phases"], "background_label": v["bg"]})
    return path


def record(x, y, id: str = "v", split: str = "val") -> VideoEmbeddings:
    y = np.asarray(y, dtype=np.int64)
    return VideoEmbeddings(id, split, "a", np.asarray(x, dtype=np.float32).reshape(len(y), -1), y, tuple(PHASES))


def ramp(length: int) -> np.ndarray:
    return np.stack([np.arange(length), np.zeros(length)], axis=1).astype(np.float32)


def one_hot(labels) -> np.ndarray:
    return np.eye(3, dtype=np.float32)[labels]


def separable(id: str, split: str, flip: bool = False, action: str = "a") -> dict:
    labels = np.array([0, 0, 0, 1, 1, 1, 2, 2])
    centres = np.array([[0.0, 0.0], [5.0, 0.0], [0.0, 5.0]])
    x = centres[labels[::-1] if flip else labels] + 0.1 * np.random.default_rng(len(id)).standard_normal((8, 2))
    return video(id, x, labels, split, action)
