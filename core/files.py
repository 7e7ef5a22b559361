"""Writing files safely: atomic create-and-rename, plain names, and paths kept inside a folder.

Every artefact (checkpoints, configs, logs, embeddings, reports, plots, manifests) is written
through `atomic_write` or `atomic_path`: the bytes go to a fresh temporary file in the target's
folder, which is then renamed over the target. A reader never sees a half-written file, a killed
writer leaves at most a hidden temporary file, and a symlink at the target is replaced, never
followed, so a write cannot land outside the folder it was aimed at.
"""
from __future__ import annotations

import contextlib
import errno
import os
import stat
import tempfile
import unicodedata
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from vava.core.errors import VavaError, option_name, quoted

# The longest file name most file systems hold (ext4, XFS, APFS, NTFS: 255 bytes or characters).
MAX_NAME_BYTES = 255
# The process's umask (reading it means setting it): artefacts get the mode `open()` would give them.
_UMASK = os.umask(0o022)
os.umask(_UMASK)


def check_plain_name(name: object, what: str, *, reserved: tuple[str, ...] = ()) -> str:
    """`name` if it is usable as one path component; `VavaError` naming `what` otherwise.

    Refused: non-strings, empty names, `.` and `..`, `/` or `\\`, NUL and other control characters,
    lone surrogates, names over `MAX_NAME_BYTES` bytes in UTF-8, and the given `reserved` names.
    """
    if not isinstance(name, str):
        raise VavaError(f"{what}: expected a string, got {type(name).__name__}")
    if not name or name in (".", ".."):
        raise VavaError(f"{what}: {quoted(name)} is not a usable name")
    if "/" in name or "\\" in name:
        raise VavaError(f"{what}: {quoted(name)} must be a plain name, without '/' or '\\'")
    if has_control_character(name):
        raise VavaError(f"{what}: {quoted(name)} contains a control character")
    if any(unicodedata.category(c) == "Cs" for c in name):  # JSON's "\ud800": no file name can hold it
        raise VavaError(f"{what}: {quoted(name)} contains a lone surrogate (not valid Unicode)")
    if len(name.encode("utf-8", "surrogatepass")) > MAX_NAME_BYTES:
        raise VavaError(f"{what}: {name[:40]!r}... is {len(name.encode('utf-8', 'surrogatepass'))} bytes long "
                        f"(at most {MAX_NAME_BYTES}, the file-system limit)")
    if name in reserved:
        raise VavaError(f"{what}: {quoted(name)} is a reserved name")
    return name


def has_control_character(text: str) -> bool:
    """Whether `text` holds a control character (NUL, newline, escape, ...: Unicode category Cc)."""
    return any(unicodedata.category(c) == "Cc" for c in text)


def is_inside(path: str | Path, root: str | Path) -> bool:
    """Whether `path`, with every symlink resolved, lies inside `root` (also resolved)."""
    return Path(path).resolve().is_relative_to(Path(root).resolve())


def check_confined(path: Path, root: Path | None, subject: str) -> Path:
    """`path`, unless `root` (a dataset root) is set and `path`, symlinks resolved, leads outside it: then a
    one-line error "SUBJECT leads outside the dataset root ROOT", with the option that allows it."""
    if root is not None and not is_inside(path, root):
        raise VavaError(f"{subject} leads outside the dataset root {root} "
                        f"(pass {option_name('allow_outside_root')} if that is intended)")
    return path


def check_new_folder(path: str | Path, what: str) -> Path:
    """`path` if it is a folder to write into from scratch: absent, or an empty folder (not a symlink)."""
    path = Path(path)
    if path.is_symlink():
        raise VavaError(f"{what}: {path} is a symlink; give the real folder")
    if path.exists() and not path.is_dir():
        raise VavaError(f"{what}: {path} exists and is not a folder")
    if path.is_dir() and any(path.iterdir()):
        raise VavaError(f"{what}: {path} is not empty; pick a new folder")
    return path


_KINDS = ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"),
          (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))


def _not_regular(path: str | Path, mode: int) -> VavaError:
    kind = next((name for test, name in _KINDS if test(mode)), "not a plain file")
    return VavaError(f"{path}: not a regular file ({kind}); only plain files are read")


def open_regular(path: str | Path) -> BinaryIO:
    """`path` opened for binary reading; a one-line `VavaError` unless it is a regular file.

    For every file a user can supply or tamper with. The open never waits (a FIFO without a writer
    would block a plain open forever) and the check is made on the opened file, so nothing can be
    swapped in between. A missing or unreadable file raises the usual `OSError`.
    """
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0))
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise _not_regular(path, mode)
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_regular(path: str | Path) -> bytes:
    """The bytes of the regular file `path` (see `open_regular`)."""
    with open_regular(path) as handle:
        return handle.read()


def check_regular(path: str | Path) -> Path:
    """`path`, unless it exists (symlinks followed) and is no regular file: then the `VavaError` of
    `open_regular`. For files that a library opens itself (zarr, HDF5, torch)."""
    try:
        mode = os.stat(path).st_mode
    except OSError:  # missing or unreachable: the library reports that itself
        return Path(path)
    if not stat.S_ISREG(mode):
        raise _not_regular(path, mode)
    return Path(path)


def make_folder(folder: Path, failure: str, hint: str = "") -> Path:
    """Make `folder` (and its parents) and return it, or one line: `failure` (why){hint}."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise VavaError(f"{failure} ({err.strerror or err}){hint}") from None
    return folder


def _disk_error(path: Path, err: OSError) -> VavaError:
    reason = "the disk is full" if err.errno in (errno.ENOSPC, errno.EDQUOT) else (err.strerror or str(err))
    return VavaError(f"{path}: cannot write ({reason}); nothing was replaced")


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """A fresh temporary path to write `path`'s new content to; renamed over `path` when the block ends.

    For libraries that write files themselves (torch.save, h5py, matplotlib, PyAV). The temporary
    file is created empty under an unpredictable name (so nothing planted there in advance is
    followed) and keeps `path`'s suffix, for libraries that pick a format from it. On any error it is
    removed and `path` keeps its old content; a full disk (or any other OS error) becomes a one-line
    `VavaError`.
    """
    path = Path(path)
    try:
        fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=f".tmp{path.suffix}", dir=path.parent)
    except OSError as err:
        raise _disk_error(path, err) from None
    os.fchmod(fd, 0o666 & ~_UMASK)  # mkstemp makes it private (0600); artefacts are as shareable as any file
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        os.replace(tmp, path)  # replaces a symlink at `path` itself, never its target
    except OSError as err:
        raise _disk_error(path, err) from None
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def atomic_write(path: str | Path, data: str | bytes | memoryview) -> Path:
    """Write `data` (text as UTF-8) to `path` by create-and-rename; return `path`."""
    path = Path(path)
    payload = data.encode("utf-8") if isinstance(data, str) else data
    with atomic_path(path) as tmp:
        with os.fdopen(os.open(tmp, os.O_WRONLY | os.O_TRUNC | os.O_NOFOLLOW), "wb") as handle:
            handle.write(payload)
    return path
