"""IKEA ASM: furniture assembly videos as frame folders, atomic actions from `gt_segments.json`.

Layout (as distributed)::

    ROOT/<Furniture>/<scan>/<view>/images/000000.jpg ...
    ROOT/gt_segments.json                      ActivityNet format, segments [first, last] in frame numbers
    ROOT/indexing_files/atomic_action_list.txt one action name per line (official ids: NA 0, then sorted)
    ROOT/indexing_files/train_cross_env.txt    lines <Furniture>/<scan>
    ROOT/indexing_files/test_cross_env.txt     the official test split, read as our `val` split

Both ends of a segment are included: the official exporter (`toolbox/export_action_gt_db_to_json.py`)
writes each run of equal per-frame labels as `[first, last]`. Frames outside every segment, and `NA`
segments, are the official background class NA. With `background=keep` NA is phase 0 (the "in the
wild" setting); with `background=drop` NA frames are dropped before embedding (`VideoRecord.keep`).
Phase ids are contiguous over the actions that occur in the chosen videos, ordered by official id.
Frames are counted by listing the JPEGs. Frame folders store no rate: 25 fps is assumed (the rate of the
released videos and of the dataset's own video export) unless the `fps` option says otherwise.
"""
from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from vava.core.decode import frame_files
from vava.core.errors import VavaError
from vava.core.files import check_confined, check_plain_name
from vava.core.records import UNKNOWN_LABEL, VideoRecord
from vava.core.validation import TEXT
from vava.pipeline.datasets.adapter import Dataset, DatasetOptions, choice, option
from vava.pipeline.datasets.annotation_files import confined, read_database, read_lines, segment_bounds
from vava.pipeline.datasets.rates import fps_option, frame_rate
from vava.pipeline.datasets.segments import segment_labels

ANNOTATIONS = "gt_segments.json"
INDEX_FOLDER = "indexing_files"
ACTION_LIST = "atomic_action_list.txt"
SPLIT_LISTS = {"train": "train_cross_env.txt", "val": "test_cross_env.txt"}
BACKGROUND = "NA"
FPS = 25.0  # the released videos' rate; toolbox/tb_utils.py exports the scan videos at 25 (and uses 30 elsewhere)
DEFAULT_FURNITURE = "Kallax_Shelf_Drawer"
BACKGROUND_MODES = ("keep", "drop")

Segments = list[tuple[float, float, int]]  # (first frame, last frame included, official action id)


@dataclass(frozen=True)
class IkeaAsmOptions(DatasetOptions):
    """The `--dataset-option`s of `ikea_asm`."""

    view: str = option(TEXT, "dev3", "camera view folder (dev1, dev2, dev3)")
    furniture: str = option(TEXT, DEFAULT_FURNITURE, "furniture type, or all")
    background: str = option(choice(*BACKGROUND_MODES), "keep", "keep: NA frames are phase 0; drop: NA frames are "
                             "left out before embedding and the actions are phases 0..C-1")
    fps: float | None = fps_option(f"frame rate of the frame folders (default {FPS:g}, the released videos' rate)")


def load_ikea_asm(root: Path, options: IkeaAsmOptions = IkeaAsmOptions(), *,
                  allow_outside_root: bool = False) -> list[VideoRecord]:
    """The videos of the official cross-environment split (test read as `val`) of one furniture type
    (or `all`), seen from camera `view`, with NA kept as phase 0 or dropped (`background`), at `fps`
    (default `FPS`)."""
    view = check_plain_name(options.view, "--dataset-option view")
    rate = frame_rate(options.fps, FPS, "ikea_asm", "frame folders store none; the released videos are 25 fps")
    confined_to = None if allow_outside_root else root.resolve()
    index = root / INDEX_FOLDER
    actions = _read_actions(confined(index / ACTION_LIST, confined_to))
    videos = _read_split_lists(index, confined_to)
    if options.furniture != "all":
        videos = {key: split for key, split in videos.items() if key[0] == options.furniture}
    if not videos:
        raise VavaError(f"{index}: no video of furniture {options.furniture!r} in "
                        f"{' or '.join(SPLIT_LISTS.values())}")
    segments = _read_segments(confined(root / ANNOTATIONS, confined_to), list(videos), actions)
    present = sorted({action for video in segments.values() for *_, action in video} - {0})
    names = [name for name, _ in sorted(actions.items(), key=lambda item: item[1])]
    phases = tuple(names[i] for i in present)
    # official id -> phase id: NA is phase 0 when kept, unknown (and dropped) otherwise
    table = np.full(len(names), UNKNOWN_LABEL, dtype=np.int64)
    keep_background = options.background == "keep"
    table[present] = np.arange(len(present)) + keep_background
    if keep_background:
        table[0] = 0
        phases = (BACKGROUND, *phases)
    records = []
    for (furniture_name, scan), split in videos.items():
        key = f"{furniture_name}/{scan}"
        folder, frames = _frame_folder(root, furniture_name, scan, view, confined_to)
        official = segment_labels(segments[furniture_name, scan], frames, background=0,
                                  where=f"{root / ANNOTATIONS}: video {key!r}")
        keep = None
        if not keep_background:
            keep = official != 0
            if not keep.any():
                raise VavaError(f"{root / ANNOTATIONS}: video {key!r}: no frame lies in an action segment "
                                "(background=drop would leave nothing)")
        records.append(VideoRecord(
            id=f"{furniture_name}__{scan}", path=folder, split=split, action=furniture_name,
            labels=table[official], phases=phases, fps=rate,
            background_label=0 if keep_background else None, confined_to=confined_to, keep=keep,
        ))
    return records


def _read_actions(path: Path) -> dict[str, int]:
    """Action name -> official class id: as the official loader numbers them, NA is 0 and the other
    names of the file (NA left out if listed) follow in sorted order."""
    names = read_lines(path, "the IKEA ASM action list")
    repeated = next((name for i, name in enumerate(names) if name in names[:i]), None)
    if repeated is not None:
        raise VavaError(f"{path}: action {repeated!r} is listed twice")
    actions = sorted(set(names) - {BACKGROUND})
    if not actions:
        raise VavaError(f"{path}: no actions listed")
    return {name: number for number, name in enumerate((BACKGROUND, *actions))}


def _read_split_lists(index: Path, confined_to: Path | None) -> dict[tuple[str, str], str]:
    """(furniture, scan) -> split, in file order (train first)."""
    videos: dict[tuple[str, str], str] = {}
    for split, name in SPLIT_LISTS.items():
        path = confined(index / name, confined_to)
        for line in read_lines(path, "the IKEA ASM split lists"):
            parts = tuple(line.strip("/").split("/"))
            if len(parts) != 2:
                raise VavaError(f"{path}: {line!r} is not <Furniture>/<scan>")
            for part in parts:
                check_plain_name(part, f"{path}: {line!r}")
            if parts in videos:
                raise VavaError(f"{path}: video {line!r} is listed twice (also in the {videos[parts]} split)")
            videos[parts] = split
    return videos


def _read_segments(path: Path, videos: list[tuple[str, str]], actions: dict[str, int]) -> dict[tuple[str, str], Segments]:
    """The segments of each of `videos`, from the annotation file `path`."""
    database = read_database(path, "the IKEA ASM action annotations")
    segments = {}
    for furniture, scan in videos:
        key = f"{furniture}/{scan}"
        where = f"{path}: video {key!r}"
        if key not in database:
            raise VavaError(f"{where}: not annotated (listed in {INDEX_FOLDER}/)")
        annotation = database[key].get("annotation")
        if not isinstance(annotation, list) or not all(isinstance(a, dict) for a in annotation):
            raise VavaError(f"{where}: annotation must be a list of objects")
        video = []
        for item in annotation:
            label = item.get("label")
            if label not in actions:
                raise VavaError(f"{where}: unknown action {label!r} (not in {INDEX_FOLDER}/{ACTION_LIST})")
            start, end = segment_bounds(item.get("segment"), where)
            if not (start.is_integer() and end.is_integer()) or end < start:
                raise VavaError(f"{where}: segment {item['segment']} is not a frame range [first, last] "
                                "(whole frame numbers, last >= first)")
            video.append((start, end, actions[label]))  # `last` included, as the exporter writes it
        segments[furniture, scan] = video
    return segments


def _frame_folder(root: Path, furniture: str, scan: str, view: str, confined_to: Path | None) -> tuple[Path, int]:
    """A video's frame folder and its number of frames (JPEGs listed, not decoded)."""
    folder = root / furniture / scan / view / "images"
    where = f"video '{furniture}/{scan}'"
    check_confined(folder, confined_to, f"{where}: {folder}")
    if not folder.is_dir():
        raise VavaError(f"{where}: frame folder {folder} is missing (view {view!r})")
    frames = len(frame_files(folder))
    if not frames:
        raise VavaError(f"{where}: frame folder {folder} holds no JPEG frames")
    return folder, frames


# The tiny copy `vava data fixture --dataset ikea_asm` writes (and the tests read): three Kallax scans
# (two train, so training can pair them, one test) and one Lack scan (train), six 8x8 frames each. The action
# list is unsorted, as the official ids are not the file order: NA 0, flip shelf 1, insert drawer pin 2,
# pick up leg 3, pick up shelf 4, slide drawer in 5. Per-frame labels by scan; `gt_segments.json` is derived
# from them as the official exporter does (`exported_segments`).
FIXTURE_ACTIONS = ("slide drawer in", "pick up shelf", "flip shelf", "pick up leg", "insert drawer pin")
_NA, _SHELF, _DRAWER, _LEG = BACKGROUND, "pick up shelf", "slide drawer in", "pick up leg"
FIXTURE_LABELS = {
    "Kallax_Shelf_Drawer/0001_black_table_02_01_2019_08_16_14_00": (_NA, _SHELF, _SHELF, _NA, _NA, _NA),
    "Kallax_Shelf_Drawer/0002_white_floor_05_02_2019_08_19_17_32": (_DRAWER, _DRAWER, _NA, _SHELF, _SHELF, _SHELF),
    "Lack_Side_Table/0003_oak_floor_01_01_2019_08_14_17_56": (_NA, _NA, _LEG, _LEG, _LEG, _NA),
    "Kallax_Shelf_Drawer/0004_oak_table_10_04_2019_08_26_16_18": (_SHELF, _SHELF, _SHELF, _NA, _DRAWER, _DRAWER),
}
FIXTURE_SPLITS = {"train_cross_env.txt": ("Kallax_Shelf_Drawer/0001_black_table_02_01_2019_08_16_14_00",
                                          "Lack_Side_Table/0003_oak_floor_01_01_2019_08_14_17_56",
                                          "Kallax_Shelf_Drawer/0004_oak_table_10_04_2019_08_26_16_18"),
                  "test_cross_env.txt": ("Kallax_Shelf_Drawer/0002_white_floor_05_02_2019_08_19_17_32",)}


def exported_segments(labels: Sequence[str]) -> list[dict]:
    """The `annotation` list the official exporter writes for per-frame `labels` (action names, NA included):
    one `{"label", "segment": [first, last]}` per run of two or more equal labels; a run of one frame
    is not written (`action/utils.py`, `find_label_segments_and_scores`), so it reads back as NA."""
    ids = np.unique(np.asarray(labels), return_inverse=True)[1]
    starts = np.flatnonzero(np.r_[True, ids[1:] != ids[:-1]])
    lasts = np.r_[starts[1:], len(ids)] - 1
    return [{"label": labels[first], "segment": [int(first), int(last)]}
            for first, last in zip(starts, lasts) if last > first]


def write_fixture(out: str | Path, frames: int = 6, views: tuple[str, ...] = ("dev3",)) -> None:
    """A tiny IKEA ASM copy in the real layout: 8x8 JPEG noise frames and the annotation files above
    (`frames` <= 6 keeps the first labels of each scan)."""
    out = Path(out)
    rng = np.random.default_rng(0)
    for key in FIXTURE_LABELS:
        for view in views:
            folder = out / key / view / "images"
            folder.mkdir(parents=True)
            for index in range(frames):
                Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)).save(folder / f"{index:06d}.jpg")
    # the exporter's order and fields: the test videos, then the train videos
    keys = (*FIXTURE_SPLITS["test_cross_env.txt"], *FIXTURE_SPLITS["train_cross_env.txt"])
    database = {key: {"subset": "testing" if key in FIXTURE_SPLITS["test_cross_env.txt"] else "training",
                      "annotation": exported_segments(FIXTURE_LABELS[key][:frames])} for key in keys}
    (out / ANNOTATIONS).write_text(json.dumps({"version": "VERSION 1.3", "database": database}))
    index = out / INDEX_FOLDER
    index.mkdir()
    (index / ACTION_LIST).write_text("\n".join(FIXTURE_ACTIONS) + "\n")
    for name, keys in FIXTURE_SPLITS.items():
        (index / name).write_text("\n".join(keys) + "\n")


DATASET = Dataset("ikea_asm",
                  "IKEA ASM frame folders with gt_segments.json and the cross-environment split (test read as val)",
                  load_ikea_asm, write_fixture, IkeaAsmOptions, preset="ikea_asm",
                  evaluation={"kendall_stride": 5})  # the papers report no tau here: the stride of the others
