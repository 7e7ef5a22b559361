"""Helpers shared by tests of several folders: PNG checks (plots, align) and calls that might block on a FIFO."""
from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import pytest
from PIL import Image

from vava.core.figures import DPI

T = TypeVar("T")


def png_size(path: Path) -> tuple[int, int]:
    assert path.stat().st_size > 1000
    with Image.open(path) as image:
        return image.size


def pixels(size: tuple[float, float]) -> tuple[int, int]:
    return round(size[0] * DPI), round(size[1] * DPI)


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
