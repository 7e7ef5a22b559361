"""Notes an adapter takes while reading a dataset: what it found or assumed that the records do not show
(which layout, an assumed frame rate, sources that disagree). `vava data info` prints them.

An adapter calls `note(text)`; whoever wants the notes reads the dataset inside `collecting_notes()`.
Outside such a block a note goes nowhere, so adapters need no parameter for it.
"""
from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar

_NOTES: ContextVar[list[str] | None] = ContextVar("dataset_notes", default=None)


def note(text: str) -> None:
    """Keep `text` (once) for the innermost `collecting_notes` block, if any."""
    notes = _NOTES.get()
    if notes is not None and text not in notes:
        notes.append(text)


@contextlib.contextmanager
def collecting_notes() -> Iterator[list[str]]:
    """The notes taken inside the block, in order."""
    notes: list[str] = []
    token = _NOTES.set(notes)
    try:
        yield notes
    finally:
        _NOTES.reset(token)
