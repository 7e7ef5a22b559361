"""The logs of a training run: CSV files appended to as training goes (train_log.csv, eval_log.csv),
and optionally TensorBoard."""
from __future__ import annotations

import contextlib
import csv
import io
import os
from pathlib import Path
from typing import Any

from vava.core.errors import VavaError
from vava.core.files import atomic_write
from vava.core.run_folder import TENSORBOARD


class CsvLog:
    """A CSV log with a `step` column, one row per `write`, mirrored to TensorBoard as `tag/<column>`.

    Rows past `start` from an interrupted attempt are dropped first, by rewriting the file with
    create-and-rename; it is then opened for appending without following a symlink. (A symlink in
    its place is replaced by a new log, never read or written through.)
    """

    def __init__(self, path: Path, start: int, what: str, tensorboard: Any = None, tag: str = "train"):
        self.path, self.what, self.tensorboard, self.tag = path, what, tensorboard, tag
        self.fields: list[str] | None = None
        kept: list[dict[str, str]] = []
        if start and path.is_file() and not path.is_symlink():
            self.fields, kept = _logged_rows(path, start, what)
        text = io.StringIO()
        if self.fields:
            writer = csv.DictWriter(text, fieldnames=self.fields)
            writer.writeheader()
            writer.writerows(kept)
        atomic_write(path, text.getvalue())
        try:
            self.handle = os.fdopen(os.open(path, os.O_WRONLY | os.O_APPEND | os.O_NOFOLLOW), "a", newline="")
        except OSError as err:
            raise VavaError(f"{path}: cannot open the {what} ({err.strerror or err})") from None

    def write(self, row: dict[str, float]) -> None:
        """Append `row` (its keys: the columns, `step` first; the first row fixes them)."""
        try:
            writer = csv.DictWriter(self.handle, fieldnames=self.fields or list(row))
            if self.fields is None:
                self.fields = list(row)
                writer.writeheader()
            writer.writerow(row)
            self.handle.flush()
        except OSError as err:
            raise VavaError(f"{self.path}: cannot append to the {self.what} ({err.strerror or err})") from None
        if self.tensorboard is not None:
            for key, value in row.items():
                if key != "step":
                    self.tensorboard.add_scalar(f"{self.tag}/{key}", value, row["step"])

    def close(self) -> None:
        with contextlib.suppress(OSError):  # a row that could not be flushed already failed the run
            self.handle.close()


def open_tensorboard(run_dir: Path) -> Any:
    """A TensorBoard SummaryWriter into RUN/tensorboard; a one-line error when tensorboard is not installed."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        raise VavaError("tensorboard: the tensorboard package is not installed "
                        "(pip install 'vava-align[tensorboard]')") from None
    return SummaryWriter(str(run_dir / TENSORBOARD))


def _logged_rows(path: Path, last_step: int, what: str) -> tuple[list[str] | None, list[dict[str, str]]]:
    """The header of a log (None when empty) and its rows up to `last_step`."""
    problem = VavaError(f"{path}: not a {what} (damaged?); move it away to resume")
    try:
        with open(path, newline="") as handle:
            reader = csv.DictReader(handle)
            if reader.fieldnames is not None and "step" not in reader.fieldnames:
                raise problem
            return reader.fieldnames, [row for row in reader if int(row["step"]) <= last_step]
    except (TypeError, ValueError, csv.Error):
        raise problem from None
