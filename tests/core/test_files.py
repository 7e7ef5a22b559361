"""Safe file writing: atomic replace, symlinks never followed, plain names, disk-full errors; only regular files
read; every artefact of train, embed and evaluate written that way (symlinks replaced, a full disk keeps the old)."""
from __future__ import annotations

import errno
import os
import re
from pathlib import Path

import pytest
import torch
from matplotlib.figure import Figure

from tests.helpers import TASKS, fifo_at, without_blocking
from tests.stages.train.helpers import run_config
from vava.core.errors import VavaError
from vava.core.files import (
    atomic_path,
    atomic_write,
    check_plain_name,
    check_regular,
    is_inside,
    open_regular,
    read_regular,
)
from vava.core.run_folder import load_checkpoint
from vava.stages.embed.run import embed
from vava.stages.evaluate.run import evaluate_run
from vava.stages.train.loop import train


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


# -- only regular files are read, never a FIFO or a device -----------------------------------------


def test_open_regular_reads_files_and_refuses_everything_else_at_once(tmp_path: Path) -> None:
    (tmp_path / "plain.txt").write_bytes(b"text")
    assert read_regular(tmp_path / "plain.txt") == b"text"
    (tmp_path / "link.txt").symlink_to(tmp_path / "plain.txt")
    assert read_regular(tmp_path / "link.txt") == b"text"  # confinement is the callers' check, not this one's
    fifo = fifo_at(tmp_path / "pipe.json")
    for path, kind in [(fifo, "a FIFO"), (tmp_path, "a folder"), (Path("/dev/null"), "a character device")]:
        with pytest.raises(VavaError, match=rf"^{re.escape(str(path))}: not a regular file \({kind}\); only plain "
                                            r"files are read$"):
            without_blocking(lambda path=path: open_regular(path), fifo)
        with pytest.raises(VavaError, match=re.escape(f"({kind})")):
            check_regular(path)
    with pytest.raises(FileNotFoundError):
        open_regular(tmp_path / "absent.txt")
    assert check_regular(tmp_path / "absent.txt") == tmp_path / "absent.txt"  # the reader says it is missing


# -- every artefact of train, embed and evaluate is written this way -------------------------------


def test_artefacts_get_the_usual_file_mode(tmp_path: Path) -> None:
    """Create-and-rename gives an artefact the mode a plain write would (not mkstemp's private 0600)."""
    from vava.core.files import atomic_write

    plain = tmp_path / "plain.json"
    plain.write_text("{}")
    assert atomic_write(tmp_path / "report.json", "{}").stat().st_mode == plain.stat().st_mode


def temporaries(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob("*") if p.name.startswith(".") and ".tmp" in p.name)


def test_artefacts_replace_symlinks_instead_of_writing_through_them(run: Path, features: Path,
                                                                   tmp_path: Path) -> None:
    victims = {}
    for name in ("config.yaml", "run.json", "train_log.csv", "embeddings.h5", "report.json", "report.md",
                 "plots/tsne.png", "plots/loss.png"):
        victim = tmp_path / "victims" / name.replace("/", "_")
        victim.parent.mkdir(exist_ok=True)
        victim.write_text(f"precious {name}")
        (run / name).parent.mkdir(exist_ok=True)
        (run / name).unlink(missing_ok=True)
        (run / name).symlink_to(victim)
        victims[name] = victim

    train(features, run, run_config(5), resume=True, progress=False)
    embed(run, progress=False)
    evaluate_run(run, **TASKS)
    for name, victim in victims.items():
        assert victim.read_text() == f"precious {name}", name
        assert not (run / name).is_symlink() and (run / name).stat().st_size > 0, name
    assert temporaries(run) == []


def test_disk_full_while_embedding_or_plotting_keeps_what_was_there(run: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = embed(run, progress=False)
    before = path.read_bytes()
    real_fdopen = os.fdopen

    class FullDisk:
        """The file the embeddings' bytes go to: the disk fills up after the first 100 of them."""

        def __init__(self, handle) -> None:
            self.handle = handle

        def __enter__(self) -> FullDisk:
            return self

        def __exit__(self, *exc: object) -> None:
            self.handle.close()

        def write(self, data) -> None:
            self.handle.write(bytes(data)[:100])
            raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fdopen", lambda fd, *args, **kwargs: FullDisk(real_fdopen(fd, *args, **kwargs)))
    with pytest.raises(VavaError, match=r"embeddings.h5: cannot write \(the disk is full\); nothing was replaced$"):
        embed(run, progress=False)
    monkeypatch.undo()
    assert path.read_bytes() == before and temporaries(run) == []

    def savefig_full(self, *args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(Figure, "savefig", savefig_full)
    with pytest.raises(VavaError, match=r"tsne.png: cannot write \(the disk is full\); nothing was replaced$"):
        evaluate_run(run, **TASKS)
    assert (run / "report.json").is_file() and temporaries(run) == []


def _final_weights(run: Path) -> dict[str, torch.Tensor]:
    return load_checkpoint(run / "checkpoints")["embedder"]


@pytest.mark.parametrize(("target", "nth"), [("step_0000004.pt", 1), ("last.pt", 2)])
def test_disk_full_while_saving_a_checkpoint_then_resume(features: Path, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch, target: str,
                                                         nth: int) -> None:
    whole, broken = tmp_path / "whole", tmp_path / "broken"
    train(features, whole, run_config(6), progress=False)
    real_replace, seen = os.replace, []

    def disk_full_at_target(src: object, dst: object) -> None:
        seen.append(Path(dst).name)
        if seen.count(target) == nth and Path(dst).name == target:
            raise OSError(errno.ENOSPC, "No space left on device")
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", disk_full_at_target)
    with pytest.raises(VavaError) as failure:
        train(features, broken, run_config(6), progress=False)
    assert "\n" not in str(failure.value)
    assert str(failure.value) == (f"{broken / 'checkpoints' / target}: cannot write (the disk is full); "
                                  "nothing was replaced")
    assert temporaries(broken) == []
    monkeypatch.undo()

    summary = train(features, broken, run_config(6), resume=True, progress=False)
    assert summary.start_step == 2
    final, reference = _final_weights(broken), _final_weights(whole)
    assert final.keys() == reference.keys() and all(torch.equal(final[k], reference[k]) for k in final)
