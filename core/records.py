"""`VideoRecord`: the one description of a video that every dataset adapter produces."""
from __future__ import annotations

import reprlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from vava.core.errors import VavaError, quoted
from vava.core.files import MAX_NAME_BYTES, check_plain_name

SPLITS = ("train", "val", "test")
UNKNOWN_LABEL = -1
MAX_LABEL = 9_999  # phase indices above this are a mistake, and evaluation sizes tables by them
MAX_FRAMES = 1_000_000  # per video (over 9 hours at 30 fps): more labels is a broken manifest
# Per-frame flags (a bit mask per frame, manifest key `flags`) for the targeted metrics of the wild setting.
FLAG_BACKGROUND = 1    # the frame is not part of the procedure
FLAG_REPEATED = 2      # the frame shows a phase done again after the video had moved past it
FLAG_OUT_OF_ORDER = 4  # the frame's phase segment is inverted with another segment relative to the procedure
FLAG_CUTAWAY = 8       # background that cuts away from the scene (a presenter, a title card, another scene)
FLAG_DISTRACTION = 16  # background in the scene with distracting motion (someone passing in front)
FRAME_FLAGS = {"background": FLAG_BACKGROUND, "repeated": FLAG_REPEATED, "out_of_order": FLAG_OUT_OF_ORDER,
               "cutaway": FLAG_CUTAWAY, "distraction": FLAG_DISTRACTION}
MAX_FLAGS = sum(FRAME_FLAGS.values())
# Kinds of background frame, told apart by their flags: background frames without a kind bit are idle.
BACKGROUND_KINDS = {"idle": 0, "cutaway": FLAG_CUTAWAY, "distraction": FLAG_DISTRACTION}
# A video id names a zarr group and a lock file `<name>.lock` (`stored_name`), so its name must be a plain
# file name with room for the suffix, and not a name zarr keeps for itself.
_LOCK_SUFFIX = ".lock"
MAX_ID_BYTES = MAX_NAME_BYTES - len(_LOCK_SUFFIX)
RESERVED_IDS = ("zarr.json",)
# zarr v3 reserves node names starting with "__" (real YouTube ids can start so); "%" starts an escape.
_ESCAPED_STARTS = {"_": "%5F", "%": "%25"}


def stored_name(video_id: str) -> str:
    """The file or group name a video id takes: the id itself, except that an id starting with `__` or
    `%` has its first character percent-encoded (`__9c5VYjqsw` -> `%5F_9c5VYjqsw`). `video_id_of`
    inverts it; ids that need no escape keep the names they always had."""
    if video_id.startswith(("__", "%")):
        return _ESCAPED_STARTS[video_id[0]] + video_id[1:]
    return video_id


def video_id_of(name: str) -> str | None:
    """The video id whose `stored_name` is `name`; None when no id is stored under that name."""
    video_id = next((character + name[len(escape):] for character, escape in _ESCAPED_STARTS.items()
                     if name.startswith(escape)), name)
    return video_id if stored_name(video_id) == name else None


def check_video_id(video_id: object, where: str) -> str:
    """`video_id` if it can name a video in the feature cache; `VavaError` starting with `where` if not.

    Refused: non-strings, empty ids, `/` or `\\`, a leading `.`, control characters (NUL included), lone
    surrogates, ids whose `stored_name` is over `MAX_ID_BYTES` bytes in UTF-8, and zarr's reserved names.
    """
    if not isinstance(video_id, str):
        # reprlib: a value unpickled from a dataset can be nested past the recursion limit of repr
        raise VavaError(f"{where}: video id must be a string, got {type(video_id).__name__} {reprlib.repr(video_id)}")
    if not video_id or "/" in video_id or video_id.startswith("."):
        raise VavaError(f"{where}: video id {quoted(video_id)} must be non-empty, contain no '/' and not start with '.'")
    size = len(video_id.encode("utf-8", "surrogatepass"))
    limit = MAX_ID_BYTES - (len(stored_name(video_id)) - len(video_id))  # an escaped first character takes 3
    if size > limit:
        raise VavaError(f"{where}: video id {video_id[:40]!r}... is {size} bytes long (at most {limit}: "
                        f"it names a folder and a lock file in the cache)")
    return check_plain_name(video_id, f"{where}: video id", reserved=RESERVED_IDS)


@dataclass(frozen=True, eq=False)
class VideoRecord:
    """One video of a dataset.

    `path` is a video file (any container FFmpeg reads) or a folder of JPEG/PNG frames.
    `labels` holds one phase index per decoded frame (`UNKNOWN_LABEL` where unknown), or is None for
    an unlabelled video: its frames are counted when decoded and all get `UNKNOWN_LABEL`.
    `background_label`, when set, is the label reserved for background frames.
    `confined_to`, when set, is the folder the video's files must stay inside (the dataset root):
    the decoder refuses a path or a frame that leads outside it, symlinks resolved.
    `flags`, when set, holds one bit mask of `FRAME_FLAGS` per frame (uint8, like `labels`).
    `keep`, when set, says which decoded frames the video is made of (bool, like `labels`): the
    others are dropped before embedding, e.g. background in a "without background" protocol.
    `member`, when set, is the byte offset of this video's record inside a container file that holds
    many, e.g. a TFRecord shard (`path`) of SequenceExamples whose `video` feature list holds the frames.
    """

    id: str
    path: Path
    split: str
    action: str
    labels: np.ndarray | None = field(repr=False)
    phases: tuple[str, ...] = ()
    fps: float | None = None
    background_label: int | None = None
    confined_to: Path | None = None
    flags: np.ndarray | None = field(default=None, repr=False)
    keep: np.ndarray | None = field(default=None, repr=False)
    member: int | None = None

    def __post_init__(self) -> None:
        for name in ("flags", "keep"):
            value = getattr(self, name)
            if value is not None and (self.labels is None or value.shape != self.labels.shape):
                raise VavaError(f"video {quoted(self.id)}: {name} need one entry per label")
        if self.keep is not None and not self.keep.any():
            raise VavaError(f"video {quoted(self.id)}: no frame is kept")

    @property
    def num_frames(self) -> int | None:
        """Frames the video is made of (after `keep`), or None when unlabelled (known once decoded)."""
        if self.labels is None:
            return None
        return int(self.labels.shape[0] if self.keep is None else np.count_nonzero(self.keep))

    @property
    def is_frame_folder(self) -> bool:
        return self.path.is_dir()


def frame_flags(labels: np.ndarray, background_label: int | None) -> np.ndarray:
    """The `FRAME_FLAGS` bits (uint8, one per frame) that a labelled timeline implies.

    Segments are the runs of one phase among the procedure frames (background and unknown frames
    left out, so a pause inside a phase does not split it). A segment whose phase appeared in an
    earlier segment is repeated; a first occurrence is out of order when an earlier first occurrence
    has a later phase or a later one an earlier phase. Background frames are flagged background;
    unknown frames (`UNKNOWN_LABEL`) get no flag.
    """
    labels = np.asarray(labels, dtype=np.int64)
    flags = np.zeros(labels.shape, dtype=np.uint8)
    background = labels == background_label if background_label is not None else np.zeros(labels.shape, bool)
    flags[background] = FLAG_BACKGROUND
    procedure = np.flatnonzero(~background & (labels != UNKNOWN_LABEL))
    if not procedure.size:
        return flags
    phases = labels[procedure]
    starts = np.r_[True, phases[1:] != phases[:-1]]
    segment_phase = phases[starts]
    repeated = np.ones(segment_phase.shape, dtype=bool)
    repeated[np.unique(segment_phase, return_index=True)[1]] = False
    first = segment_phase[~repeated]
    later_before = np.r_[-1, np.maximum.accumulate(first)[:-1]] > first
    earlier_after = np.r_[np.minimum.accumulate(first[::-1])[::-1][1:], MAX_LABEL + 1] < first
    segment_flags = np.where(repeated, FLAG_REPEATED, 0).astype(np.uint8)
    segment_flags[~repeated] = np.where(later_before | earlier_after, FLAG_OUT_OF_ORDER, 0)
    flags[procedure] = segment_flags[np.cumsum(starts) - 1]
    return flags
