"""Fingerprints: the same inputs give the same feature set, any change gives a new one."""
from __future__ import annotations

import dataclasses
import os
import shutil
from pathlib import Path

import numpy as np

from tests.conftest import make_folder_dataset, read_manifest
from vava.cache.fingerprint import feature_set_fingerprint, stable_hash, video_inputs
from vava.cache.inputs import FeatureSettings, Sampling
from vava.core.preprocess import Preprocessing
from vava.pipeline.datasets.folder import load_folder, write_manifest

SETTINGS = FeatureSettings(backbone="resnet50", layer="layer3", weights="random:0:abc", preprocessing=Preprocessing(64),
                           sampling=Sampling(None), on_length_mismatch="error", dtype="float16")


def fingerprint(root: Path, **changes) -> str:
    return feature_set_fingerprint(load_folder(root), dataclasses.replace(SETTINGS, **changes))[0]


def test_stable_hash_ignores_key_order() -> None:
    assert stable_hash({"a": 1, "b": [1, 2]}) == stable_hash({"b": [1, 2], "a": 1})
    assert stable_hash({"a": 1}) != stable_hash({"a": 2})


def test_same_inputs_same_fingerprint_and_readable_inputs(tiny_dataset: Path) -> None:
    fp, inputs, _ = feature_set_fingerprint(load_folder(tiny_dataset), SETTINGS)
    assert fp == fingerprint(tiny_dataset) and len(fp) == 16 and fp == stable_hash(inputs.attrs())[:16]
    assert (inputs.num_videos, inputs.settings, inputs.format_version) == (3, SETTINGS, 2)


def test_moved_dataset_keeps_fingerprint(tiny_dataset: Path, tmp_path: Path) -> None:
    moved = tmp_path / "elsewhere"
    shutil.copytree(tiny_dataset, moved)  # copytree keeps modification times
    assert fingerprint(moved) == fingerprint(tiny_dataset)


def test_every_input_changes_the_fingerprint(tiny_dataset: Path) -> None:
    base = fingerprint(tiny_dataset)
    changed = {fingerprint(tiny_dataset, weights="random:1:def"),
               fingerprint(tiny_dataset, preprocessing=Preprocessing(128)),
               fingerprint(tiny_dataset, sampling=Sampling(10)),
               fingerprint(tiny_dataset, backbone="resnet18"),
               fingerprint(tiny_dataset, dtype="float32")}
    assert base not in changed and len(changed) == 5

    video = tiny_dataset / "videos" / "v1.mp4"
    stat = video.stat()
    os.utime(video, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    touched = fingerprint(tiny_dataset)
    assert touched != base

    entries = read_manifest(tiny_dataset)
    entries[2]["labels"][-1] = 0
    write_manifest(tiny_dataset, entries)
    relabelled = fingerprint(tiny_dataset)
    entries[2]["split"] = "val"
    write_manifest(tiny_dataset, entries)
    resplit = fingerprint(tiny_dataset)
    assert len({base, touched, relabelled, resplit}) == 4


def test_frame_folder_identity_follows_its_files(tmp_path: Path) -> None:
    root = tmp_path / "d"
    make_folder_dataset(root, [4])
    frames = root / "frames"
    frames.mkdir()
    for i in range(4):
        (frames / f"{i:03d}.jpg").write_bytes(bytes([i]) * 10)
    entries = read_manifest(root)
    entries[0]["path"] = "frames"
    write_manifest(root, entries)
    before = fingerprint(root)
    (frames / "001.jpg").write_bytes(b"x" * 11)
    assert fingerprint(root) != before
    assert np.array_equal(load_folder(root)[0].labels, [0, 0, 1, 1])


def test_flags_enter_the_fingerprint_only_when_given(tiny_dataset: Path) -> None:
    base = fingerprint(tiny_dataset)
    entries = read_manifest(tiny_dataset)
    entries[0]["flags"] = [0] * len(entries[0]["labels"])
    write_manifest(tiny_dataset, entries)
    zeros = fingerprint(tiny_dataset)
    entries[0]["flags"][3] = 4
    write_manifest(tiny_dataset, entries)
    one_set = fingerprint(tiny_dataset)
    assert len({base, zeros, one_set}) == 3
    del entries[0]["flags"]
    write_manifest(tiny_dataset, entries)
    assert fingerprint(tiny_dataset) == base


def test_member_enters_the_fingerprint_only_when_given(tiny_dataset: Path) -> None:
    records = load_folder(tiny_dataset)
    assert "member" not in video_inputs(records[0])
    prints = set()
    for member in (None, 0, 4719):
        first = dataclasses.replace(records[0], member=member)
        prints.add(feature_set_fingerprint([first, *records[1:]], SETTINGS)[0])
        assert video_inputs(first).get("member") == member
    assert len(prints) == 3 and fingerprint(tiny_dataset) in prints
