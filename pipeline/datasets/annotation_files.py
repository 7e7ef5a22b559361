"""Reading the annotation files of real datasets (JSON, line lists) with one-line errors naming the file."""
from __future__ import annotations

import codecs
import json
from pathlib import Path

from vava.core.errors import VavaError
from vava.core.files import check_confined, read_regular


def confined(path: Path, confined_to: Path | None) -> Path:
    """`path`, unless it leads (symlinks resolved) outside `confined_to`, the dataset root (None: anywhere)."""
    return check_confined(path, confined_to, f"{path}:")


def read_text(path: Path, what: str) -> str:
    """The UTF-8 text of the regular file `path` (a leading byte-order mark dropped); `what` says what it is for."""
    try:
        raw = read_regular(path)
    except FileNotFoundError:
        raise VavaError(f"{path}: missing ({what})") from None
    except OSError as err:
        raise VavaError(f"{path}: cannot read ({err.strerror})") from None
    try:
        return raw.removeprefix(codecs.BOM_UTF8).decode("utf-8")
    except UnicodeDecodeError as err:
        raise VavaError(f"{path}: not UTF-8 text (byte 0x{raw[err.start]:02x} at offset {err.start})") from None


def read_json(path: Path, what: str) -> object:
    """The parsed JSON document at `path`."""
    try:
        return json.loads(read_text(path, what))
    except json.JSONDecodeError as err:
        raise VavaError(f"{path}: not valid JSON ({err.msg} at line {err.lineno}, column {err.colno})") from None
    except RecursionError:
        raise VavaError(f"{path}: not valid JSON (nested too deeply)") from None


def read_database(path: Path, what: str) -> dict[str, dict]:
    """The `database` object of an ActivityNet-style annotation file: video key -> entry (an object)."""
    document = read_json(path, what)
    database = document.get("database") if isinstance(document, dict) else None
    if not isinstance(database, dict):
        raise VavaError(f"{path}: expected an object with a \"database\" object (ActivityNet format)")
    bad = next((key for key, entry in database.items() if not isinstance(entry, dict)), None)
    if bad is not None:
        raise VavaError(f"{path}: video {bad!r}: expected an object, got {type(database[bad]).__name__}")
    return database


def read_lines(path: Path, what: str) -> list[str]:
    """The non-blank lines of a text file, stripped."""
    return [line.strip() for line in read_text(path, what).splitlines() if line.strip()]


def segment_bounds(value: object, where: str) -> tuple[float, float]:
    """A `segment` field, `[start, end]` (two numbers), as a pair."""
    if (not isinstance(value, list) or len(value) != 2
            or not all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in value)):
        raise VavaError(f"{where}: segment must be [start, end] (two numbers), got {value!r}")
    return float(value[0]), float(value[1])
