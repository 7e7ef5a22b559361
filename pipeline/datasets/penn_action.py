"""Penn Action: the official release (JPEG frame folders and MATLAB annotations) plus the per-frame
phase labels that the LAV/CARL authors distribute separately.

Layout: `ROOT/frames/<NNNN>/<NNNNNN>.jpg`, `ROOT/labels/<NNNN>.mat` (fields `action` and `train`, 1 or -1,
are read; the pose fields are not) and `<phase_labels>/<train|val>/<action folder>/<NNNN>.npy`, one int
array of phase ids (0-based) per frame. A clip's phase-label file is found by its number alone; the action
comes from the `.mat` `action` field. The split comes from the label folder the file is in (`split=labels`,
as CARL's converter takes it) or from the `.mat` `train` flag, 1 train, -1 val (`split=mat`); clips on
which the two disagree are noted.

13 of the 15 actions are used (`jump_rope` and `strum_guitar` have no phase labels in the protocol); clips
without a phase-label file are skipped. When a clip has more labels than frames or more frames than labels,
`on_mismatch=resample` cuts the longer sequence down to the shorter's length as CARL's converter does
(entry j takes element floor(j * longer / shorter)); extra frames are dropped with the record's `keep` mask.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.io
from PIL import Image

from vava.core.decode import frame_files
from vava.core.errors import VavaError
from vava.core.files import check_confined
from vava.core.records import MAX_FRAMES, UNKNOWN_LABEL, VideoRecord, check_video_id
from vava.core.validation import TEXT
from vava.pipeline.datasets.adapter import Dataset, DatasetOptions, choice, option
from vava.pipeline.datasets.notes import note
from vava.pipeline.datasets.rates import fps_option, frame_rate

# Phases per action, from TCC/CARL's class counts (labels 0..k-1).
ACTION_PHASES = {
    "baseball_pitch": 4, "baseball_swing": 3, "bench_press": 2, "bowl": 3, "clean_and_jerk": 6,
    "golf_swing": 3, "jumping_jacks": 4, "pushup": 2, "pullup": 2, "situp": 2, "squat": 4,
    "tennis_forehand": 3, "tennis_serve": 4,
}
EXCLUDED_ACTIONS = ("jump_rope", "strum_guitar")
FPS = 30.0  # assumed: the release states none; CARL's frame-folder converter's fps flag defaults to 30
LABEL_SPLITS = ("train", "val")
ON_MISMATCH = ("resample", "error")
SPLIT_SOURCES = ("labels", "mat")
DEFAULT_PHASE_LABELS = "phase_labels"


@dataclass(frozen=True)
class PennActionOptions(DatasetOptions):
    """The `--dataset-option`s of `penn_action`."""

    actions: str = option(TEXT, "all", f"all, or a comma list of: {', '.join(ACTION_PHASES)}")
    phase_labels: str = option(TEXT, DEFAULT_PHASE_LABELS,
                               "folder of <train|val>/<action>/<NNNN>.npy phase labels (relative to ROOT)")
    on_mismatch: str = option(choice(*ON_MISMATCH), "resample",
                              "frame vs label count differs: resample the longer (as CARL) or error")
    split: str = option(choice(*SPLIT_SOURCES), "labels", "where a clip's split comes from: labels (the phase-label "
                        "folder it is in, as CARL) or mat (the .mat train flag)")
    fps: float | None = fps_option(f"frame rate of the frame folders (default {FPS:g}, assumed: the release states "
                                   "none)")


def load_penn_action(root: str | Path, options: PennActionOptions = PennActionOptions(), *,
                     allow_outside_root: bool = False) -> list[VideoRecord]:
    """The labelled clips of the selected `actions` (`all` or a comma list), in clip order, each in the
    split its label folder (`split=labels`) or its `.mat` flag (`split=mat`) says, at `fps` (default `FPS`).

    `phase_labels` is the label folder, relative to `root` unless absolute; it, the `.mat` files and the
    frame folders must stay inside `root` (symlinks resolved) unless `allow_outside_root`.
    """
    root = Path(root)
    wanted = parse_actions(options.actions)
    rate = frame_rate(options.fps, FPS, "penn_action", "the release states none")
    confined_to = None if allow_outside_root else root.resolve()
    label_dir = _confined(root / options.phase_labels, confined_to, "phase_labels")
    if not label_dir.is_dir():
        raise VavaError(f"{label_dir}: phase-label folder not found (the per-frame labels are distributed apart "
                        "from Penn Action; point --dataset-option phase_labels=DIR at them)")
    records, disagreeing = [], []
    for clip, (label_file, folder_split) in sorted(_label_files(label_dir, confined_to).items()):
        mat = _confined(root / "labels" / f"{clip}.mat", confined_to, "annotation file")
        if not mat.is_file():
            raise VavaError(f"{mat}: annotation file missing (clip {clip} has phase labels in {label_file})")
        action, flag_split = read_annotation(mat)
        if action in wanted:
            if folder_split != flag_split:
                disagreeing.append(f"{clip} (label folder {folder_split}, .mat {flag_split})")
            chosen = folder_split if options.split == "labels" else flag_split
            records.append(_record(root, clip, action, chosen, label_file, confined_to, options.on_mismatch, rate))
    if not records:
        raise VavaError(f"{root}: no clip of the selected actions ({options.actions}) has a phase-label file in "
                        f"{label_dir}")
    if disagreeing:
        shown = ", ".join(disagreeing[:5]) + (", ..." if len(disagreeing) > 5 else "")
        source = "label folder" if options.split == "labels" else ".mat train flag"
        note(f"penn_action: {len(disagreeing)} clip(s) are in one split by their label folder and in the other by "
             f"their .mat train flag; split={options.split} follows the {source}: {shown}")
    return records


def parse_actions(actions: str) -> tuple[str, ...]:
    """The action names `actions` selects: `all`, or a comma list of the 13 used actions."""
    if actions.strip() == "all":
        return tuple(ACTION_PHASES)
    names = tuple(name.strip() for name in actions.split(","))
    unknown = next((name for name in names if name not in ACTION_PHASES), None)
    if unknown is not None:
        raise VavaError(f"--dataset-option actions: unknown action {unknown!r} "
                        f"(use all or a comma list of {', '.join(ACTION_PHASES)})")
    return names


def read_annotation(mat: Path) -> tuple[str, str]:
    """(action, split) from a Penn Action `.mat` file: its `action` name and `train` flag (1 train, -1 val)."""
    try:
        fields = scipy.io.loadmat(mat, variable_names=("action", "train"), squeeze_me=True)
    except Exception as err:  # scipy raises many types (IndexError, ValueError, MatReadError...) on bad files
        raise VavaError(f"{mat}: not a readable MATLAB v5 file ({type(err).__name__}: {err})") from None
    for name in ("action", "train"):
        if name not in fields:
            raise VavaError(f"{mat}: field {name!r} missing")
    action, flag = fields["action"], fields["train"]
    if not isinstance(action, str) or action not in (*ACTION_PHASES, *EXCLUDED_ACTIONS):
        raise VavaError(f"{mat}: field 'action' is {action!r}, not a Penn Action action")
    if isinstance(flag, (bool, np.bool_)) or not isinstance(flag, (int, float, np.number)) or flag not in (1, -1):
        raise VavaError(f"{mat}: field 'train' is {flag!r}, expected 1 (train) or -1 (test, used as val)")
    return action, "train" if flag == 1 else "val"


def resample_indices(longer: int, shorter: int) -> np.ndarray:
    """The `shorter` indices into a sequence of `longer` that CARL keeps: floor(j * longer / shorter)."""
    return np.arange(shorter, dtype=np.int64) * longer // shorter


def align_labels(labels: np.ndarray, frames: int) -> tuple[np.ndarray, np.ndarray | None]:
    """Labels (one per frame) and `keep` mask that match `labels` to a clip of `frames` frames.

    More labels than frames: the labels at `resample_indices` are kept. More frames than labels: every
    frame gets a label slot, the frames at `resample_indices` take the labels in order and the others
    are dropped (`keep` False, label unknown), so no frame is used twice.
    """
    count = labels.shape[0]
    if count >= frames:
        return (labels if count == frames else labels[resample_indices(count, frames)]), None
    chosen = resample_indices(frames, count)
    full = np.full(frames, UNKNOWN_LABEL, dtype=np.int64)
    full[chosen] = labels
    keep = np.zeros(frames, dtype=bool)
    keep[chosen] = True
    return full, keep


def _record(root: Path, clip: str, action: str, split: str, label_file: Path, confined_to: Path | None,
            on_mismatch: str, fps: float) -> VideoRecord:
    folder = _confined(root / "frames" / clip, confined_to, "frame folder")
    if not folder.is_dir():
        raise VavaError(f"{folder}: frame folder of clip {clip} missing")
    frames = len(frame_files(folder))
    if not frames:
        raise VavaError(f"{folder}: no JPEG frames in the folder of clip {clip}")
    labels = read_phase_labels(label_file, ACTION_PHASES[action])
    if labels.shape[0] != frames and on_mismatch == "error":
        raise VavaError(f"clip {clip} ({action}): {frames} frames in {folder} but {labels.shape[0]} labels in "
                        f"{label_file} (--dataset-option on_mismatch=resample matches them as CARL does)")
    labels, keep = align_labels(labels, frames)
    video_id = check_video_id(f"{clip}_{action}", f"{label_file}")
    return VideoRecord(id=video_id, path=folder, split=split, action=action, labels=labels,
                       phases=tuple(f"phase_{i}" for i in range(ACTION_PHASES[action])), fps=fps,
                       confined_to=confined_to, keep=keep)


def read_phase_labels(path: Path, phases: int) -> np.ndarray:
    """The int64 phase ids in the `.npy` file `path`, each in 0..`phases`-1 (no pickles are read)."""
    try:
        array = np.load(path, allow_pickle=False, mmap_mode="r")
    except (OSError, ValueError, EOFError) as err:
        raise VavaError(f"{path}: not a readable .npy array ({err})") from None
    if not isinstance(array, np.ndarray):  # np.load reads a .npz archive whatever the file is named
        array.close()
        raise VavaError(f"{path}: a .npz archive, not a .npy array")
    if array.ndim != 1 or not np.issubdtype(array.dtype, np.integer):
        raise VavaError(f"{path}: expected a 1-D integer array of phase ids, got {array.dtype} of shape {array.shape}")
    if not 0 < array.shape[0] <= MAX_FRAMES:
        raise VavaError(f"{path}: {array.shape[0]} labels (expected 1 to {MAX_FRAMES})")
    labels = np.asarray(array, dtype=np.int64)
    bad = labels[(labels < 0) | (labels >= phases)]
    if bad.size:
        raise VavaError(f"{path}: label {bad[0]} is out of range (this action has {phases} phases: 0..{phases - 1})")
    return labels


def _label_files(label_dir: Path, confined_to: Path | None) -> dict[str, tuple[Path, str]]:
    """Clip number -> its `<split>/<action folder>/<clip>.npy` file and that split; a clip labelled twice
    is refused."""
    found: dict[str, tuple[Path, str]] = {}
    for split in LABEL_SPLITS:
        for file in sorted((label_dir / split).glob("*/*.npy")):
            clip = file.stem
            if clip in found:
                raise VavaError(f"{file}: clip {clip} already has phase labels in {found[clip][0]}")
            path = _confined(file, confined_to, "phase-label file")
            if not path.is_file():  # a FIFO would block reading forever
                raise VavaError(f"{file}: not a regular file")
            found[clip] = path, split
    return found


def left_out_clips(root: str | Path, records: list[VideoRecord], options: PennActionOptions) -> dict[str, list[str]]:
    """The clips of the release (a `.mat` file in `ROOT/labels/`) that `load_penn_action` left out of
    `records`, by reason: an action the protocol excludes, one not among `actions`, or no phase-label file."""
    root, wanted = Path(root), parse_actions(options.actions)
    kept = {record.id.split("_", 1)[0] for record in records}
    reasons: dict[str, list[str]] = {}
    for mat in sorted((root / "labels").glob("*.mat")):
        if mat.stem in kept:
            continue
        action, _ = read_annotation(mat)
        if action in EXCLUDED_ACTIONS:
            why = f"actions without phase labels in the protocol ({', '.join(EXCLUDED_ACTIONS)})"
        elif action not in wanted:
            why = "actions not selected by --dataset-option actions"
        else:  # a wanted, labelled clip is read or stops `load_penn_action` with an error
            why = "no phase-label file"
        reasons.setdefault(why, []).append(f"{mat.stem}_{action}")
    return reasons


def _confined(path: Path, confined_to: Path | None, what: str) -> Path:
    """`path` resolved; refused when it leads outside `confined_to` (when set)."""
    return check_confined(path.resolve(), confined_to, f"{path}: {what}")


# -- fixture -------------------------------------------------------------------------------------------

# (clip, action, train flag, frames, labels or None for no label file)
_FIXTURE_CLIPS = (
    ("0001", "baseball_pitch", 1, 6, [0, 0, 1, 2, 3, 3]),
    ("0002", "baseball_pitch", 1, 6, None),
    ("0003", "baseball_pitch", -1, 6, [0, 1, 1, 2, 2, 3]),
    ("0004", "squat", 1, 6, [0, 1, 1, 2, 3, 3]),
    ("0005", "squat", 1, 7, [0, 0, 1, 2, 2, 3]),
    ("0006", "squat", -1, 6, [0, 0, 1, 1, 2, 3]),
    ("0007", "situp", 1, 6, [0, 0, 0, 1, 1, 1]),
    ("0008", "situp", 1, 6, [0, 1, 1, 1, 0, 0]),
    ("0009", "situp", -1, 6, [0, 0, 1, 1, 1, 0]),
    ("0010", "jump_rope", 1, 6, [0, 1, 0, 1, 0, 1]),
    ("0011", "baseball_pitch", 1, 6, [0, 1, 2, 2, 3, 3]),  # every action keeps two labelled train clips
)


def write_fixture(out: Path) -> None:
    """A tiny Penn Action in the real layout: 3 actions x 3-4 clips of 8x8 JPEG noise, one clip without
    phase labels, one with 7 frames and 6 labels, and a jump_rope clip (an excluded action)."""
    out = Path(out)
    rng = np.random.default_rng(0)
    (out / "labels").mkdir(parents=True, exist_ok=True)
    for clip, action, flag, frames, labels in _FIXTURE_CLIPS:
        folder = out / "frames" / clip
        folder.mkdir(parents=True)
        for index, pixels in enumerate(rng.integers(0, 256, (frames, 8, 8, 3), dtype=np.uint8), start=1):
            Image.fromarray(pixels).save(folder / f"{index:06d}.jpg")
        pose = np.zeros((frames, 13))
        scipy.io.savemat(out / "labels" / f"{clip}.mat", {"action": action, "train": flag, "nframes": frames,
                                                          "x": pose, "y": pose, "visibility": pose})
        if labels is not None:
            target = out / DEFAULT_PHASE_LABELS / ("train" if flag == 1 else "val") / action
            target.mkdir(parents=True, exist_ok=True)
            np.save(target / f"{clip}.npy", np.asarray(labels, dtype=np.int64))


DATASET = Dataset("penn_action",
                  "Penn Action frames + .mat annotations, with the LAV/CARL per-frame phase labels (13 actions)",
                  load_penn_action, write_fixture, PennActionOptions, left_out_clips, preset="penn_action",
                  evaluation={"kendall_stride": 5})  # TCC's evaluation config; LAV and GTA use 5 too
