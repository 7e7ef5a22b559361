"""COIN: instructional YouTube videos of 180 tasks, step segments (in seconds) in `COIN.json`.

Layout: `ROOT/COIN.json` (`{"database": {<youtube id>: {"class": <task>, "recipe_type": <task number>,
"annotation": [{"id": <step id>, "segment": [start_s, end_s], "label": <step name>}, ...], ...}}}`) over
local copies of the videos (any container PyAV reads), as COIN's `download_videos.py` saves them,
`ROOT/<videos>/<recipe_type>/<youtube id>.mp4`, or all in one folder, `ROOT/<videos>/<youtube id>.<ext>`.

Per task, phase 0 is background (frames between steps) and COIN's step ids become 1..K in
increasing order. Each task's videos are split 60/40 into train/val by a seeded shuffle of the
sorted ids (COIN's own `subset` field is not used), or as a split file lists them.
"""
from __future__ import annotations

import difflib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vava.core.errors import VavaError
from vava.core.files import check_confined
from vava.core.records import VideoRecord, check_video_id
from vava.core.validation import TEXT, Rule, is_integer, optional
from vava.core.videoio import probe_video, write_video
from vava.pipeline.datasets.adapter import Dataset, DatasetOptions, choice, option
from vava.pipeline.datasets.annotation_files import confined, read_database, segment_bounds
from vava.pipeline.datasets.notes import note
from vava.pipeline.datasets.segments import segment_labels
from vava.pipeline.datasets.splits import read_split

ANNOTATIONS = "COIN.json"
# The six activities of VAVA's COIN evaluation (supplement, Table 4), by their COIN class names.
VAVA_TASKS = ("CleanHamsterCage", "MakeRJ45Cable", "ChangeMobilePhoneBattery", "AttendNBASkillsChallenge",
              "MakePaperWindMill", "ReplaceHardDisk")
LARGEST_COUNT = 6
MISSING_MODES = ("error", "skip")
BACKGROUND = "background"

Steps = list[tuple[float, float, int, str]]  # (start s, end s, COIN step id, step name)


# numpy's generators take no negative seed
SEED = Rule(lambda seed: is_integer(seed) and seed >= 0, "an integer >= 0",
            lambda seed: "must be >= 0" if is_integer(seed) else "not an integer")


@dataclass(frozen=True)
class CoinOptions(DatasetOptions):
    """The `--dataset-option`s of `coin`."""

    tasks: str = option(TEXT, "vava", "vava (the six tasks of VAVA's COIN evaluation), largest (the six with the "
                        "most videos) or a comma-separated list of task names")
    seed: int = option(SEED, 0, "seed of the per-task 60/40 train/val split")
    missing: str = option(choice(*MISSING_MODES), "error",
                          "error: refuse when a video file is missing; skip: leave such videos out")
    videos: str = option(TEXT, "videos", "folder of the video files, relative to the root")
    split_file: str | None = option(optional(TEXT), None, "JSON {\"train\": [ids], \"val\": [ids]} to use instead "
                                    "of the drawn split (vava data info --write-split writes one)")


def load_coin(root: Path, options: CoinOptions = CoinOptions(), *,
              allow_outside_root: bool = False) -> list[VideoRecord]:
    """The videos of the chosen `tasks`, split 60/40 per task with `seed` (or as `split_file` says)."""
    confined_to = None if allow_outside_root else root.resolve()
    annotations = confined(root / ANNOTATIONS, confined_to)
    database = read_database(annotations, "the COIN annotations")
    by_task = _videos_by_task(database, annotations)
    chosen = select_tasks(by_task, options.tasks, annotations)
    if options.split_file:
        listed = read_split(options.split_file)
        unknown = next((video_id for video_id in listed if video_id not in database), None)
        if unknown is not None:
            raise VavaError(f"{options.split_file}: video {unknown!r} is not in {annotations}")
    else:
        listed = {}
        for task in chosen:
            listed.update(draw_split(by_task[task], options.seed))
    folder = _videos_folder(root, options.videos, confined_to)
    wanted = [video_id for task in chosen for video_id in by_task[task] if video_id in listed]
    files = _video_files(folder, {video_id: database[video_id] for video_id in wanted})
    absent = [video_id for video_id in wanted if video_id not in files]
    if absent and options.missing == "error":
        raise VavaError(f"{folder}: {len(absent)} of {len(wanted)} videos of the chosen tasks have no file "
                        f"(first: {_places(absent[0], database[absent[0]])}); download them or pass "
                        "--dataset-option missing=skip")
    records = []
    for task in chosen:
        steps = {video_id: _steps(database[video_id], f"{annotations}: video {video_id!r}")
                 for video_id in by_task[task]}
        phases, phase = _task_phases(steps)
        for video_id in by_task[task]:
            if video_id not in listed or video_id not in files:
                continue
            where = f"{annotations}: video {video_id!r}"
            path = _video_file(files[video_id], confined_to, where)
            fps, frames = _rate_and_count(path, where)
            labels = segment_labels([(start, end, phase[step]) for start, end, step, _ in steps[video_id]],
                                    frames, background=0, frames_per_unit=fps, where=where)
            records.append(VideoRecord(
                id=check_video_id(video_id, str(annotations)), path=path, split=listed[video_id], action=task,
                labels=labels, phases=phases, fps=fps, background_label=0, confined_to=confined_to,
            ))
    if not records:
        raise VavaError(f"{folder}: none of the {len(wanted)} videos of the chosen tasks has a file")
    return records


def _rate_and_count(path: Path, where: str) -> tuple[float, int]:
    """(fps, frames) of a video file (`vava.core.videoio.probe_video`: no frame is decoded); both must be known."""
    try:
        frames, fps = probe_video(path)
    except VavaError as err:
        raise VavaError(f"{where}: {err}") from None
    if fps is None:
        raise VavaError(f"{where}: {path} does not state its frame rate")
    if not frames:
        raise VavaError(f"{where}: {path} holds no video frames")
    return fps, frames


def select_tasks(by_task: dict[str, list[str]], tasks: str, annotations: Path) -> list[str]:
    """The tasks named by the `tasks` option: `largest`, `vava` or a comma-separated list of task names."""
    if tasks == "largest":
        return sorted(by_task, key=lambda task: (-len(by_task[task]), task))[:LARGEST_COUNT]
    names = VAVA_TASKS if tasks == "vava" else tuple(dict.fromkeys(n.strip() for n in tasks.split(",") if n.strip()))
    if not names:
        raise VavaError(f"--dataset-option tasks={tasks!r}: name at least one task")
    for name in names:
        if name not in by_task:
            close = difflib.get_close_matches(name, by_task, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise VavaError(f"{annotations}: no video of task {name!r} (tasks={tasks}){hint}")
    return list(names)


def draw_split(video_ids: list[str], seed: int) -> dict[str, str]:
    """One task's split: its sorted ids shuffled by `numpy.random.default_rng(seed)`, the first
    floor(0.6 N) in train, the rest in val."""
    ordered = sorted(video_ids)
    shuffled = [ordered[i] for i in np.random.default_rng(seed).permutation(len(ordered))]
    train = 3 * len(ordered) // 5  # floor(0.6 N), exactly
    return {video_id: "train" if i < train else "val" for i, video_id in enumerate(shuffled)}


def _task_phases(steps: dict[str, Steps]) -> tuple[tuple[str, ...], dict[int, int]]:
    """A task's phase names (background, then its steps by COIN step id) and step id -> phase id."""
    names = {step: name for video in steps.values() for *_, step, name in video}
    ordered = sorted(names)
    return (BACKGROUND, *(names[step] for step in ordered)), {step: i for i, step in enumerate(ordered, start=1)}


def _videos_by_task(database: dict[str, dict], annotations: Path) -> dict[str, list[str]]:
    """Task name -> its video ids, sorted."""
    by_task: dict[str, list[str]] = {}
    for video_id, entry in database.items():
        task = entry.get("class")
        if not isinstance(task, str) or not task:
            raise VavaError(f"{annotations}: video {video_id!r}: class must be a task name, got {task!r}")
        by_task.setdefault(task, []).append(video_id)
    return {task: sorted(ids) for task, ids in by_task.items()}


def _annotation(entry: dict, where: str) -> list[dict]:
    annotation = entry.get("annotation")
    if not isinstance(annotation, list) or not all(isinstance(a, dict) for a in annotation):
        raise VavaError(f"{where}: annotation must be a list of objects")
    return annotation


def _step_id(value: object, where: str) -> int:
    """A step id: an integer, or a string of digits (as COIN.json writes them)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.isdecimal():
        return int(value)
    raise VavaError(f"{where}: step id must be an integer, got {value!r}")


def _steps(entry: dict, where: str) -> Steps:
    steps = []
    for item in _annotation(entry, where):
        name = item.get("label")
        if not isinstance(name, str):
            raise VavaError(f"{where}: step label must be a string, got {name!r}")
        steps.append((*segment_bounds(item.get("segment"), where), _step_id(item.get("id"), where), name))
    return steps


def _videos_folder(root: Path, videos: str, confined_to: Path | None) -> Path:
    folder = root / videos
    check_confined(folder, confined_to, f"--dataset-option videos={videos}: {folder}")
    if not folder.is_dir():
        raise VavaError(f"{folder}: the videos folder is missing (set it with --dataset-option videos=FOLDER)")
    return folder


def _video_files(folder: Path, entries: dict[str, dict]) -> dict[str, list[Path]]:
    """YouTube id -> its files, for the ids of `entries` (their COIN.json entries) that have any:
    `<id>.<ext>` in `folder` or in its subfolder named by the entry's `recipe_type` (the layout of COIN's
    `download_videos.py`). Notes how many were found in each layout."""
    listed = _listed_files(folder)
    files, nested = {}, 0
    for video_id, entry in entries.items():
        by_type = listed.get((str(entry.get("recipe_type")), video_id), [])
        if found := listed.get((video_id,), []) + by_type:
            files[video_id] = found
            nested += bool(by_type)
    counts = {f"{folder}/<recipe_type>/<id>.<ext> (download_videos.py's layout)": nested,
              f"{folder}/<id>.<ext>": len(files) - nested}
    if files:
        note(f"coin: video files found: {' and '.join(f'{n} as {where}' for where, n in counts.items() if n)}")
    return files


def _listed_files(folder: Path) -> dict[tuple[str, ...], list[Path]]:
    """The files of `folder` by (name without extension,) and those of its subfolders by (subfolder, name
    without extension); hidden ones left out."""
    listed: dict[tuple[str, ...], list[Path]] = {}
    for path in sorted(folder.iterdir()):
        if path.name.startswith("."):
            continue
        if path.is_file():
            listed.setdefault((path.stem,), []).append(path)
        elif path.is_dir():
            for inner in sorted(path.iterdir()):
                if not inner.name.startswith(".") and inner.is_file():
                    listed.setdefault((path.name, inner.stem), []).append(inner)
    return listed


def _places(video_id: str, entry: dict) -> str:
    """Where a video's file is looked for, for messages."""
    return f"{video_id}.* or {entry.get('recipe_type')}/{video_id}.*"


def _video_file(paths: list[Path], confined_to: Path | None, where: str) -> Path:
    """The one file of a video, refused when ambiguous or (unless allowed) outside the dataset root."""
    if len(paths) > 1:
        raise VavaError(f"{where}: two files, {paths[0].name} and {paths[1].name}; keep one")
    return check_confined(paths[0], confined_to, f"{where}: {paths[0]}")


# The tiny copy `vava data fixture --dataset coin` writes (and the tests read): VAVA's six tasks, four
# 2-second videos each (two train, so training can pair them) at 10 fps, 8x8 px; per task two steps, COIN ids
# `id + 1` (step 1) and `id` (step 2), so a task's first step in time has the larger id. Files are laid out as
# `download_videos.py` saves them, `videos/<recipe_type>/<id>.mp4`; video `<prefix>2` of the first task is a
# Matroska file. The NBA videos' ids start with `__`, as some real YouTube ids do.
FIXTURE_FPS, FIXTURE_FRAMES = 10.0, 20
FIXTURE_TASKS = {  # task: (video id prefix, first step id, (name of step id, name of step id + 1))
    "MakeRJ45Cable": ("rj45-", 20, ("arrange the separated wire", "strip the insulation")),
    "ReplaceHardDisk": ("disk-", 30, ("remove the old hard disk", "open the laptop rear cover")),
    "CleanHamsterCage": ("cage-", 40, ("clean toys and hamster cages", "remove the hamster from the hamster cage")),
    "ChangeMobilePhoneBattery": ("phone-", 50, ("take down the old battery", "heat the back cover of the phone")),
    "AttendNBASkillsChallenge": ("__nba-", 60, ("dribble in the field", "do the first layup")),
    "MakePaperWindMill": ("mill-", 70, ("cut along the edges", "fold the edges of the paper")),
}
# Per video: (segment in seconds, which step: 1 = id + 1, 0 = id). At 10 fps: video 0 -> frames 2..5 step
# id+1; video 1 -> frames 0..3 step id+1, 10..14 step id; video 2 -> frames 15..19 step id (cut at the end);
# video 3 -> frames 5..9 step id, 12..15 step id+1 (the steps in the other order).
FIXTURE_SEGMENTS = (
    [((0.25, 0.5), 1)],
    [((0.0, 0.3), 1), ((1.0, 1.45), 0)],
    [((1.5, 3.0), 0)],
    [((0.5, 0.9), 0), ((1.2, 1.5), 1)],
)


def fixture_database() -> dict[str, dict]:
    """The COIN.json `database` of the fixture."""
    database = {}
    for recipe, (task, (prefix, step, names)) in enumerate(FIXTURE_TASKS.items()):
        for index, segments in enumerate(FIXTURE_SEGMENTS):
            database[f"{prefix}{index}"] = {
                "class": task, "recipe_type": recipe, "subset": "training" if index % 2 else "testing",
                "start": 0.0, "end": FIXTURE_FRAMES / FIXTURE_FPS, "duration": FIXTURE_FRAMES / FIXTURE_FPS,
                "video_url": f"https://www.youtube.com/embed/{prefix}{index}",
                "annotation": [{"id": str(step + which), "segment": list(segment), "label": names[which]}
                               for segment, which in segments],
            }
    return database


def write_fixture(out: str | Path) -> None:
    """A tiny COIN copy in the real format: `COIN.json` and `videos/<recipe_type>/<id>.mp4` (one `.mkv`)."""
    out = Path(out)
    database = fixture_database()
    rng = np.random.default_rng(0)
    for video_id, entry in database.items():
        folder = out / "videos" / str(entry["recipe_type"])
        folder.mkdir(parents=True, exist_ok=True)
        suffix = ".mkv" if video_id == "rj45-2" else ".mp4"
        frames = rng.integers(0, 256, (FIXTURE_FRAMES, 8, 8, 3), dtype=np.uint8)
        write_video(folder / f"{video_id}{suffix}", frames, FIXTURE_FPS)
    (out / ANNOTATIONS).write_text(json.dumps({"version": "fixture", "database": database}, indent=1))


DATASET = Dataset("coin", "COIN.json over local videos/<youtube id>.<ext>, split 60/40 per task", load_coin,
                  write_fixture, CoinOptions, preset="coin",
                  evaluation={"kendall_stride": 5})  # the papers report no tau here: the stride of the others
