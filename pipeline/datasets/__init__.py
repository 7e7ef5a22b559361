"""Dataset adapters: each turns a dataset on disk, in its own format, into a list of `VideoRecord`s.

`DATASETS` maps a name (`vava extract --dataset NAME`) to its `Dataset`: the reader, the options it
takes (`--dataset-option KEY=VALUE`) and the writer of a tiny copy in the real on-disk format
(`vava data fixture`), the same one the tests read.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from vava.core.errors import VavaError
from vava.core.records import VideoRecord
from vava.pipeline.datasets import coin, ikea_asm, penn_action, pouring
from vava.pipeline.datasets.folder import load_folder
from vava.pipeline.datasets.synthetic import write_fixture as write_synthetic_fixture


@dataclass(frozen=True)
class DatasetOption:
    """One `--dataset-option KEY=VALUE` an adapter takes; `choices` empty means any text."""

    help: str
    default: str | None = None
    choices: tuple[str, ...] = ()


@dataclass(frozen=True)
class Dataset:
    """A registered adapter.

    `load(root, allow_outside_root=..., **options)` reads the dataset at `root` (option values are
    strings, every declared option given, `None` when unset without a default); it refuses video
    paths outside `root` unless allowed. `fixture(out)` writes a tiny dataset in the real format.
    `left_out(root, records, **options)`, for adapters that skip some of a release's videos, says which
    videos of the release `load` left out and why ({reason: [video, ...]}), for `vava data info`.
    """

    name: str
    summary: str
    load: Callable[..., list[VideoRecord]]
    fixture: Callable[[Path], None]
    options: Mapping[str, DatasetOption] = field(default_factory=dict)
    left_out: Callable[..., dict[str, list[str]]] | None = None


DATASETS: dict[str, Dataset] = {
    "folder": Dataset("folder", "the generic folder format: manifest.jsonl + videos or frame folders",
                      load_folder, write_synthetic_fixture),
    "penn_action": Dataset(
        "penn_action", "Penn Action frames + .mat annotations, with the LAV/CARL per-frame phase labels (13 actions)",
        penn_action.load_penn_action, penn_action.write_fixture, {
            "actions": DatasetOption(f"all, or a comma list of: {', '.join(penn_action.ACTION_PHASES)}", "all"),
            "phase_labels": DatasetOption("folder of <train|val>/<action>/<NNNN>.npy phase labels (relative to ROOT)",
                                          penn_action.DEFAULT_PHASE_LABELS),
            "on_mismatch": DatasetOption("frame vs label count differs: resample the longer (as CARL) or error",
                                         "resample", penn_action.ON_MISMATCH),
            "split": DatasetOption("where a clip's split comes from: labels (the phase-label folder it is in, as "
                                   "CARL) or mat (the .mat train flag)", "labels", penn_action.SPLIT_SOURCES),
            "fps": DatasetOption(f"frame rate of the frame folders (default {penn_action.FPS:g}, assumed: the release "
                                 "states none)"),
        }, penn_action.left_out_clips),
    "pouring": Dataset("pouring", "Pouring (TCC): TFRecord shards, or CARL's mp4s + train/val.pkl; 5 phases",
                       pouring.load_pouring, pouring.write_fixture,
                       {"layout": DatasetOption("on-disk layout: tfrecord (pouring_*.tfrecord shards), carl "
                                                "(videos/ + train.pkl, val.pkl), or auto: whichever ROOT holds",
                                                "auto", pouring.LAYOUTS),
                        "fps": DatasetOption(f"frame rate of the tfrecord layout's frames (default "
                                             f"{pouring.TFRECORD_FPS:g}, assumed: the shards store none)")}),
    "ikea_asm": Dataset(
        "ikea_asm", "IKEA ASM frame folders with gt_segments.json and the cross-environment split (test read as val)",
        ikea_asm.load_ikea_asm, ikea_asm.write_fixture, {
            "view": DatasetOption("camera view folder (dev1, dev2, dev3)", "dev3"),
            "furniture": DatasetOption("furniture type, or all", ikea_asm.DEFAULT_FURNITURE),
            "background": DatasetOption("keep: NA frames are phase 0; drop: NA frames are left out before "
                                        "embedding and the actions are phases 0..C-1", "keep",
                                        ikea_asm.BACKGROUND_MODES),
            "fps": DatasetOption(f"frame rate of the frame folders (default {ikea_asm.FPS:g}, the released videos' "
                                 "rate)"),
        }),
    "coin": Dataset(
        "coin", "COIN.json over local videos/<youtube id>.<ext>, split 60/40 per task",
        coin.load_coin, coin.write_fixture, {
            "tasks": DatasetOption("vava (the six tasks of VAVA's COIN evaluation), largest (the six with the most "
                                   "videos) or a comma-separated list of task names", "vava"),
            "seed": DatasetOption("seed of the per-task 60/40 train/val split", "0"),
            "missing": DatasetOption("error: refuse when a video file is missing; skip: leave such videos out",
                                     "error", coin.MISSING_MODES),
            "videos": DatasetOption("folder of the video files, relative to the root", "videos"),
            "split_file": DatasetOption("JSON {\"train\": [ids], \"val\": [ids]} to use instead of the drawn split "
                                        "(vava data info --write-split writes one)"),
        }),
}


def dataset(name: str) -> Dataset:
    """The registered adapter `name`; a one-line error listing the known ones otherwise."""
    if name not in DATASETS:
        raise VavaError(f"unknown dataset {name!r} (known: {', '.join(sorted(DATASETS))})")
    return DATASETS[name]


def resolve_options(name: str, given: Mapping[str, str] | None) -> dict[str, str | None]:
    """Every option of dataset `name`: the given values (checked) and the defaults of the others."""
    spec = dataset(name)
    given = dict(given or {})
    unknown = sorted(set(given) - set(spec.options))
    if unknown:
        known = ", ".join(sorted(spec.options)) or "none"
        raise VavaError(f"--dataset-option: {name} has no option {unknown[0]!r} (its options: {known})")
    for key, value in given.items():
        choices = spec.options[key].choices
        if choices and value not in choices:
            raise VavaError(f"--dataset-option {key}={value}: not one of {', '.join(choices)}")
    return {key: given.get(key, option.default) for key, option in spec.options.items()}


def load_dataset(name: str, root: str | Path, *, allow_outside_root: bool = False,
                 options: Mapping[str, str] | None = None) -> list[VideoRecord]:
    """The videos of dataset `name` stored at `root`, read with `options` (see `Dataset`)."""
    resolved = resolve_options(name, options)
    root = Path(root)
    if not root.is_dir():
        raise VavaError(f"dataset root {root} is not a directory")
    return dataset(name).load(root, allow_outside_root=allow_outside_root, **resolved)


__all__ = ["DATASETS", "Dataset", "DatasetOption", "VideoRecord", "dataset", "load_dataset", "resolve_options"]
