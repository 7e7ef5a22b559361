"""Helpers shared by tests of several folders: the CLI run in-process, PNG checks (plots, align), markdown
tables, calls that might block on a FIFO, damaging a feature set's stored frames, and a run folder's
checkpoints."""
from __future__ import annotations

import os
import re
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import numpy as np
import pytest
import torch
from click.testing import CliRunner, Result
from PIL import Image
from zarr.storage import LocalStore

from vava.cache.locks import FileLock
from vava.cache.store import FRAMES_PER_SHARD
from vava.core.figures import DPI
from vava.pipeline.cli import main

T = TypeVar("T")

# -- the CLI ---------------------------------------------------------------------------------------

EXTRACT = ["extract", "--weights", "random", "--image-size", "64", "--quiet"]


def cli(*args: object) -> Result:
    """`vava ARGS`, run in-process (arguments as strings)."""
    return CliRunner().invoke(main, [str(a) for a in args])


def one_line_error(result: Result, pattern: str) -> None:
    """The CLI failed with exit 1 and a single line matching `pattern`, no traceback."""
    assert result.exit_code == 1, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert re.search(pattern, result.stderr), result.stderr


def single_line(output: str) -> str:
    """The one line of `output`, which holds no traceback."""
    lines = output.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in output, output
    return lines[0]


# -- figures ---------------------------------------------------------------------------------------


def png_size(path: Path) -> tuple[int, int]:
    assert path.stat().st_size > 1000
    with Image.open(path) as image:
        return image.size


def pixels(size: tuple[float, float]) -> tuple[int, int]:
    return round(size[0] * DPI), round(size[1] * DPI)


# -- markdown tables -------------------------------------------------------------------------------

DELIMITER_ROW = re.compile(r"^\|\s*:?-{3,}")  # the `|---|---|` line under a table's header


def table_cells(line: str) -> list[str]:
    """The cells of a markdown table line, stripped; an escaped `\\|` is part of its cell and comes back as `|`."""
    return [cell.strip().replace("\\|", "|") for cell in re.split(r"(?<!\\)\|", line.strip().strip("|"))]


def markdown_tables(text: str) -> list[list[list[str]]]:
    """The tables of a markdown text in order, each as its rows of cells (header first, delimiter row left out)."""
    tables: list[list[list[str]]] = []
    rows: list[list[str]] = []
    for line in [*text.splitlines(), ""]:
        if line.startswith("|"):
            if not DELIMITER_ROW.match(line):
                rows.append(table_cells(line))
        elif rows:
            tables.append(rows)
            rows = []
    return tables


# -- FIFOs -----------------------------------------------------------------------------------------


def without_blocking(call: Callable[[], T], fifo: Path, timeout: float = 30) -> T:
    """`call()`'s result, run in a thread; the test fails if it is still running after `timeout` s (blocked on
    `fifo`, so a regression never hangs the suite: the FIFO is then opened for writing, which ends the read)."""
    outcome: list = []

    def run() -> None:
        try:
            outcome.append(call())
        except BaseException as err:  # noqa: BLE001 - re-raised in the test's thread
            outcome.append(err)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        thread.join(timeout)
        pytest.fail(f"reading {fifo} blocked")
    if isinstance(outcome[0], BaseException):
        raise outcome[0]
    return outcome[0]


def fifo_at(path: Path) -> Path:
    path.unlink(missing_ok=True)
    os.mkfifo(path)
    return path


def refused(result, fifo: Path) -> None:
    """Exit 1 with the one line that names the FIFO."""
    assert result.exit_code == 1, result.output
    assert result.stderr == f"Error: {fifo}: not a regular file (a FIFO); only plain files are read\n"


# -- a feature set's stored frames ------------------------------------------------------------------

SHARD_INDEX_ENTRY = 16  # (offset, nbytes) as two little-endian uint64 per chunk, then a 4-byte checksum


def shards(feature_set: Path, video_id: str) -> list[Path]:
    return sorted((feature_set / "videos" / video_id / "features" / "c").rglob("*/0/0/0"))


def flip_chunk_bytes(feature_set: Path, video_id: str) -> None:
    """Flip one payload byte of every stored frame of a video (the shard index stays intact)."""
    for shard in shards(feature_set, video_id):
        data = bytearray(shard.read_bytes())
        index = np.frombuffer(bytes(data[-(FRAMES_PER_SHARD * SHARD_INDEX_ENTRY + 4):-4]), "<u8").reshape(-1, 2)
        for offset, nbytes in index:
            if nbytes != np.iinfo(np.uint64).max:  # an empty chunk slot
                data[int(offset) + 24] ^= 0x40  # past blosc's 16-byte header: the frame's values
        shard.write_bytes(bytes(data))


def watch_store_opens(monkeypatch: pytest.MonkeyPatch) -> list[tuple[Path, bool]]:
    """From now on, record every zarr store opened with whether it is read-only, and fail every lock."""
    opened: list[tuple[Path, bool]] = []
    open_store = LocalStore._open

    async def spy(self: LocalStore, *args, **kwargs):
        opened.append((Path(self.root), self.read_only))
        return await open_store(self, *args, **kwargs)

    def no_lock(self: FileLock, blocking: bool) -> bool:
        raise PermissionError(f"read-only file system: {self.path}")

    monkeypatch.setattr(LocalStore, "_open", spy)
    monkeypatch.setattr(FileLock, "acquire", no_lock)
    return opened


# -- a run folder's checkpoints --------------------------------------------------------------------

TASKS = {"tasks": ("progress",), "ks": (1,)}  # the quickest evaluation


def only_checkpoint(run: Path, state: object) -> Path:
    """Save `state` as the run's only checkpoint: last.pt, with no step_N.pt to fall back to."""
    for old in (run / "checkpoints").iterdir():
        old.unlink()
    torch.save(state, run / "checkpoints" / "last.pt")
    return run / "checkpoints" / "last.pt"


def saved(run: Path) -> dict:
    return torch.load(run / "checkpoints" / "last.pt", weights_only=True)
