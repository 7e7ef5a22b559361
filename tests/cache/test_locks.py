"""The cache's file locks (cache/locks.py): a lock whose file was deleted while waited for, a lock folder that
cannot be made, a symlink planted at a lock's path."""
from __future__ import annotations

import shutil
import threading
from pathlib import Path

from tests.helpers import cli, one_line_error
from vava.cache.locks import lock_folder, set_lock


def test_lock_waited_for_while_its_file_was_deleted_is_taken_on_the_new_file(tmp_path: Path) -> None:
    remover = set_lock(tmp_path / "fp", shared=False)
    assert remover.acquire(blocking=False)
    writer = set_lock(tmp_path / "fp", shared=True)
    waiting = threading.Thread(target=writer.acquire, args=(True,))
    waiting.start()
    waiting.join(0.3)
    shutil.rmtree(lock_folder(tmp_path / "fp"))  # what `cache rm` does before it lets go
    remover.release()
    waiting.join(5)
    assert not waiting.is_alive()
    assert not set_lock(tmp_path / "fp", shared=False).acquire(blocking=False)  # the writer holds the file there now
    writer.release()


def test_an_unwritable_lock_folder_is_one_line(toy_features: Path, tmp_path: Path) -> None:
    """As on a read-only cache: extract of a new set and cache rm need a lock file and cannot make one."""
    shutil.rmtree(toy_features.parent / ".locks")
    (toy_features.parent / ".locks").write_text("")  # a file where the lock folder belongs
    one_line_error(cli("cache", "rm", "--yes", toy_features),
                   r"\.locks/toyfeatures00000/set\.lock: cannot take the cache lock")
    assert (toy_features / "zarr.json").is_file()


def test_a_symlinked_lock_file_is_refused_and_creates_nothing(toy_features: Path, tmp_path: Path) -> None:
    """A symlink planted at a lock's path must not make the lock create (or open) its target."""
    locks = toy_features.parent / ".locks" / toy_features.name
    locks.mkdir(parents=True, exist_ok=True)
    victim = tmp_path / "victim_new"
    (locks / "set.lock").unlink(missing_ok=True)
    (locks / "set.lock").symlink_to(victim)
    one_line_error(cli("cache", "rm", "--yes", toy_features), r"set\.lock: cannot take the cache lock")
    assert not victim.exists() and (toy_features / "zarr.json").is_file()
