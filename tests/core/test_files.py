"""Safe file writing: atomic replace, symlinks never followed, plain names, disk-full errors."""
from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from vava.core.errors import VavaError
from vava.core.files import atomic_path, atomic_write, check_plain_name, is_inside


def test_atomic_write_replaces_a_symlink_instead_of_writing_through_it(tmp_path: Path) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.yaml").symlink_to(victim)
    atomic_write(run / "config.yaml", "new")
    assert victim.read_text() == "precious"
    assert not (run / "config.yaml").is_symlink() and (run / "config.yaml").read_text() == "new"
    assert sorted(p.name for p in run.iterdir()) == ["config.yaml"]  # no temporary file left


def test_failed_write_keeps_the_old_content_and_leaves_no_temporary(tmp_path: Path, monkeypatch) -> None:
    target = tmp_path / "report.json"
    target.write_text("old")

    def full(*args: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "replace", full)
    with pytest.raises(VavaError, match=r"report.json: cannot write \(the disk is full\); nothing was replaced"):
        atomic_write(target, "new")
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.json"]


def test_atomic_path_removes_the_temporary_when_the_writer_raises(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError), atomic_path(tmp_path / "x.h5") as tmp:
        tmp.write_bytes(b"partial")
        raise RuntimeError("writer crashed")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("name, problem", [
    ("", "not a usable name"), ("..", "not a usable name"), ("a/b", "plain name"), ("../x", "plain name"),
    ("a\\b", "plain name"), ("a\x00b", "control character"), ("tab\there", "control character"),
    ("x" * 256, "256 bytes long"), ("zarr.json", "reserved name"), (7, "expected a string"),
])
def test_plain_names_refuse_what_is_not_one_path_component(name: object, problem: str) -> None:
    with pytest.raises(VavaError, match=f"run name: .*{problem}"):
        check_plain_name(name, "run name", reserved=("zarr.json",))


def test_plain_names_accept_unicode_and_spaces() -> None:
    assert check_plain_name("tâche 1 – vidéo", "id") == "tâche 1 – vidéo"
    assert check_plain_name("é" * 127, "id") == "é" * 127  # 254 bytes


def test_is_inside_resolves_symlinks(tmp_path: Path) -> None:
    root, outside = tmp_path / "root", tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    (root / "link").symlink_to(outside)
    assert is_inside(root / "a" / "b.mp4", root)
    assert not is_inside(root / ".." / "outside" / "b.mp4", root)
    assert not is_inside(root / "link" / "b.mp4", root)
