"""`VideoRecord`: the one description of a video that every dataset adapter produces."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

SPLITS = ("train", "val")
UNKNOWN_LABEL = -1


@dataclass(frozen=True, eq=False)
class VideoRecord:
    """One video of a dataset.

    `path` is a video file (any container FFmpeg reads) or a folder of JPEG/PNG frames.
    `labels` holds one phase index per frame (`UNKNOWN_LABEL` where unknown);
    `background_label`, when set, is the label reserved for background frames.
    """

    id: str
    path: Path
    split: str
    action: str
    labels: np.ndarray = field(repr=False)
    phases: tuple[str, ...] = ()
    fps: float | None = None
    background_label: int | None = None

    @property
    def num_frames(self) -> int:
        """Frame count the labels describe."""
        return int(self.labels.shape[0])

    @property
    def is_frame_folder(self) -> bool:
        return self.path.is_dir()
