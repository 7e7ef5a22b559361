"""Tiny embeddings.h5 files, in the layout `vava embed` writes, for the evaluation tests (flags only when given)."""
from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np

from vava.core.embeddings_file import VideoEmbeddings
from vava.core.records import FLAG_BACKGROUND as B
from vava.core.records import FLAG_CUTAWAY as C
from vava.core.records import FLAG_OUT_OF_ORDER as O
from vava.core.records import FLAG_REPEATED as R
from vava.stages.evaluate.probes import PROBES
from vava.stages.evaluate.report import evaluate_embeddings

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


def wild_report(folder: Path) -> dict:
    """`evaluate_embeddings`' report with every probe on two noisy actions (flags, background, one action with
    a single val video, so some probes skip), non-default options and a fixed file name: a fixture whose
    report.md and sweep tables must not change unless their layout is meant to."""
    phases, labels = ["bg", "reach", "grasp", "lift"], np.repeat([0, 1, 2, 3], 3)

    def noisy(id: str, split: str, action: str, shift: float, flags=None) -> dict:
        noise = np.random.default_rng(len(id) + int(100 * shift)).normal(0, 0.9, (12, 2))
        x = np.stack([labels * 2.0 + shift, np.arange(12) / 12], axis=1) + noise
        return video(id, x, labels, split, action, phases, 0, flags)

    videos = [noisy(f"a{i}", "train", "a", 0.01 * i) for i in range(3)] + [noisy("av0", "val", "a", 0.3)]
    videos.append(noisy("av1", "val", "a", 0.0, [B, B | C, B, 0, 0, O, O, R, 0, 0, R | O, 0]))
    videos += [noisy(f"b{i}", "train", "b", 0.02 * i) for i in range(2)] + [noisy("bv", "val", "b", 0.5)]
    report = evaluate_embeddings(write_h5(folder / "e.h5", videos), tasks=tuple(PROBES), ks=(1, 2),
                                 few_shot_ks=(1, 2, 5), few_shot_episodes=3, robustness_seeds=3,
                                 kendall_distance="cosine", progress_fraction=0.5, classifier="logistic")
    return {**report, "file": "runs/toy/embeddings.h5", "created": "2024-01-01T00:00:00+00:00"}
