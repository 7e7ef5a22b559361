"""Run folders in object storage (`s3://bucket/runs/vava`): a command works in a local copy synced with the URL.

A command given a run-folder URL copies the run into its staging folder (`staging_folder`: under
$VAVA_STAGING, default ~/.cache/vava/runs), works there exactly as in a local run folder, and uploads what
it wrote: after each checkpoint (`publish`) and when it ends, also when it fails, so the URL keeps
everything done. A manifest in the staging folder records, for every synced file, its object's version
(ETag) and the local file's size and modification time, so a sync moves only what changed:

- pulling, a file changed in the URL is downloaded (the URL is the truth: another machine wrote it), one
  deleted there is deleted here unless it changed here since;
- pushing, a file changed here is uploaded (also what an interrupted upload left to do), one deleted here
  is deleted there; checkpoints go first, so the URL never holds a log behind its last checkpoint.

Names starting with "." (the run lock, scratch and temporary files) are never synced. One process at a
time writes into a run URL: it holds the lease object URL/.vava.lease, created only where none exists (a
conditional write, S3's `If-None-Match: *`), naming its host and process. A lease left by a process of
this host that no longer runs is taken over; any other is reported, never broken.
"""
from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import os
import socket
from collections.abc import Callable, Iterator
from pathlib import Path, PurePosixPath
from typing import Any

from filelock import FileLock

from vava.core.errors import VavaError
from vava.core.files import atomic_path, atomic_write, has_control_character, is_inside, make_folder
from vava.core.location import RemotePath, storage_reason
from vava.core.embeddings_file import EMBEDDINGS_NAME
from vava.core.report_file import REPORT_JSON
from vava.core.run_folder import (
    CHECKPOINTS,
    CONFIG_NAME,
    KEY_NAME,
    RUN_INFO_NAME,
    SYNC_LOCK_NAME,
    SYNC_MANIFEST_NAME,
)

STAGING_ENV = "VAVA_STAGING"
LEASE_NAME = ".vava.lease"
# What the top of a run folder holds, one of them at least (a trained run, or a reference row `vava embed
# --identity` made): a URL holding other things is no run folder.
RUN_MARKERS = frozenset({RUN_INFO_NAME, CONFIG_NAME, CHECKPOINTS, KEY_NAME, EMBEDDINGS_NAME, REPORT_JSON})

_active: dict[Path, StagedRun] = {}  # staging folder -> its run, while a command works in it


def staging_root() -> Path:
    """Where run folders in object storage are copied: $VAVA_STAGING, or vava/runs in the user's cache folder."""
    if chosen := os.environ.get(STAGING_ENV):
        return Path(chosen).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache").expanduser() / "vava" / "runs"


def staging_folder(url: RemotePath) -> Path:
    """The local copy of the run at `url`: a folder of the URL's last name (what reports call the run) in one
    named by a hash of the whole URL, so that every URL has its own copy and two commands on one machine
    share it."""
    name = "run" if has_control_character(url.name) else url.name
    return staging_root() / hashlib.sha256(str(url).encode()).hexdigest()[:16] / name


class StagedRun:
    """A run folder in object storage and its local copy."""

    def __init__(self, url: RemotePath):
        self.url, self.local = url, staging_folder(url)
        if self.local.is_symlink():
            raise VavaError(f"{self.local}: the staging folder of {url} is a symlink; remove it")
        make_folder(self.local, f"{url}: cannot make its staging folder {self.local}",
                     f"; set {STAGING_ENV} to a writable folder")
        self.manifest: dict[str, dict[str, Any]] = self._read_manifest()
        self.present: set[str] = set()  # the synced files here after the last pull or push
        self.lease: str | None = None
        self.takeover: str | None = None  # the mark of the stale lease this process replaced

    def pull(self, wanted: Callable[[str], bool] | None = None) -> None:
        """Bring the local copy up to date with the URL (only the files `wanted` says yes to, when given).

        A synced file missing here is downloaded again (a cache cleaner may have removed it), unless a
        command deleted it and could not yet delete it in the URL (the manifest marks it): its push does.
        """
        with self._sync_lock():
            self.manifest = self._read_manifest()
            remote = self._remote_files()
            for name, version in sorted(remote.items()):
                known = self.manifest.get(name) or {}
                missing = not (self.local / name).is_file() and not known.get("deleted")
                if (wanted is None or wanted(name)) and (known.get("version") != version or missing):
                    self._download(name, version)
            for name in [n for n in self.manifest if n not in remote]:
                if not self._changed_here(name) and not self._behind_symlink(name):
                    (self.local / name).unlink(missing_ok=True)
                    del self.manifest[name]
            self._write_manifest()
            self.present = self._local_files()

    def push(self) -> None:
        """Upload what changed here since the last sync, then delete from the URL what this command deleted
        here (a file present after its pull, gone now); a file that went missing otherwise is left there."""
        with self._sync_lock():
            here = self._local_files()
            uploads = sorted((n for n in here if self._changed_here(n)),
                             key=lambda n: (not n.startswith(f"{CHECKPOINTS}/"), n))
            deleted = [n for n, known in self.manifest.items() if n not in here and not self._behind_symlink(n)
                       and (n in self.present or known.get("deleted"))]
            for name in deleted:  # marked first: a deletion cut short is finished by the next push, not undone
                self.manifest[name]["deleted"] = True
            try:  # the manifest records each file as it is done, so a push cut short is taken up where it stopped
                for name in uploads:
                    key, local = f"{self.url.key}/{name}", _stat(self.local / name)
                    with self.url.errors(f"upload {name}"):
                        self.url.fs.put_file(str(self.local / name), key)
                        self.manifest[name] = {"version": _version(self.url.fs.info(key)), **local}
                for name in deleted:
                    with self.url.errors(f"delete {name}"), contextlib.suppress(FileNotFoundError):
                        self.url.fs.rm_file(f"{self.url.key}/{name}")
                    del self.manifest[name]
            finally:
                self._write_manifest()
                self.present = here

    # -- the lease: one writer at a time -------------------------------------------------------------------
    def take_lease(self, command: str) -> None:
        """Hold the URL's lease for this process, or a one-line error naming the process that holds it (here,
        in a folder above, or in a run folder below: they share objects)."""
        fs = self.url.fs  # outside the try below: a missing driver is its own one-line error
        mine = json.dumps({"host": socket.gethostname(), "pid": os.getpid(), "pids": _process_space(),
                           "command": command, "since": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")})
        holder: dict[str, Any] | None = None
        for attempt in range(2):
            try:
                fs.pipe_file(self._lease_key, mine.encode(), mode="create")
                self.lease = mine
                break
            except Exception as err:  # refused because a lease exists, or the storage failed: the lease tells which
                failure = err
            try:
                text, holder = self._lease_holder()
            except VavaError:
                text = None
            if text is None:  # no lease there, or none readable: the write itself failed
                raise VavaError(f"{self.url}: cannot write its lease ({storage_reason(failure)})") from None
            if attempt or not _stale(holder, self.url) or not self._claim_takeover(text):
                break
            with self.url.errors("remove a stale lease"), contextlib.suppress(FileNotFoundError):
                fs.rm_file(self._lease_key)
        if self.lease is not None:
            holder = self._nested_holder()
            if holder is None:
                return
            self.release_lease()
        who = f"{holder.get('command', 'a command')} (process {holder.get('pid')} on {holder.get('host')}, " \
              f"since {holder.get('since')})"
        where = holder.get("url", self.url)
        raise VavaError(f"{self.url}: {who} is writing into {'this run' if where == self.url else where}; wait for "
                        f"it to end, or delete {where}/{LEASE_NAME} if that process is gone")

    def release_lease(self) -> None:
        """Delete the lease if it is still this process's (and the mark of a stale lease it took over)."""
        with self.url.errors("remove its lease"):
            with contextlib.suppress(FileNotFoundError):
                if self.lease is not None and self.url.fs.cat_file(self._lease_key).decode() == self.lease:
                    self.url.fs.rm_file(self._lease_key)
            with contextlib.suppress(FileNotFoundError):
                if self.takeover is not None:
                    self.url.fs.rm_file(self.takeover)
        self.lease = self.takeover = None

    def _claim_takeover(self, stale: bytes) -> bool:
        """Whether this process is the one to replace the stale lease `stale`: the one that creates its
        takeover mark (two processes finding one stale lease would otherwise each delete the other's new one)."""
        mark = f"{self._lease_key}.takeover-{hashlib.sha256(stale).hexdigest()[:16]}"
        try:
            self.url.fs.pipe_file(mark, b"", mode="create")
        except Exception:  # another process claimed it (or the storage failed: then the lease stays as it is)
            return False
        self.takeover = mark
        return True

    def _nested_holder(self) -> dict[str, Any] | None:
        """The holder of a lease in a folder above the URL or in one below it (with its URL), if any."""
        fs, key = self.url.fs, self.url.key
        above = [f"{'/'.join(key.split('/')[:n])}/{LEASE_NAME}" for n in range(1, key.count("/") + 1)]
        with self.url.errors("look for other leases"):
            below = [k.lstrip("/") for k in fs.find(key) if k.endswith(f"/{LEASE_NAME}")]
            for lease in [*above, *(k for k in below if k != self._lease_key)]:
                try:
                    holder = json.loads(fs.cat_file(lease))
                except (FileNotFoundError, ValueError):
                    continue
                where = RemotePath(f"{self.url.protocol}://{lease.rpartition('/')[0]}")
                if isinstance(holder, dict) and not _stale(holder, where):
                    return {**holder, "url": where}
        return None

    @property
    def _lease_key(self) -> str:
        return f"{self.url.key}/{LEASE_NAME}"

    def _lease_holder(self) -> tuple[bytes | None, dict[str, Any]]:
        """The URL's lease as stored (None when there is none) and what it says of its holder."""
        with self.url.errors("read its lease"):
            try:
                text = self.url.fs.cat_file(self._lease_key)
            except FileNotFoundError:
                return None, {}
        try:
            holder = json.loads(text)
        except ValueError:
            holder = None
        return text, holder if isinstance(holder, dict) else {"host": "?", "pid": "?", "since": "?"}

    # -- files on both sides -------------------------------------------------------------------------------
    def _remote_files(self) -> dict[str, str]:
        """Each synced object below the URL, by its path relative to it: its version (ETag, or size and time)."""
        with self.url.errors("list the run"):
            found = self.url.fs.find(self.url.key, detail=True)
        prefix = self.url.key + "/"
        files = {}
        for key, entry in found.items():
            if key.endswith("/") and not entry.get("size"):
                continue  # a folder marker ("Create folder" in a console, rclone, Hadoop): no file
            key = key.lstrip("/")  # some file systems (memory://) list absolute names
            name = key[len(prefix):]
            if entry.get("type") == "file" and key == self.url.key:
                raise VavaError(f"{self.url}: is a file, not a run folder")
            if entry.get("type") == "file" and key.startswith(prefix) and not _hidden(name):
                files[_checked_name(name, self.url)] = _version(entry)
        folders = {str(parent) for name in files for parent in PurePosixPath(name).parents}
        if clash := min(folders & set(files), default=None):
            raise VavaError(f"{self.url}: holds an object {clash!r} and objects below {clash}/: a file cannot "
                            "also be a folder; remove one")
        return files

    def _local_files(self) -> set[str]:
        """The synced files of the local copy: regular files inside it (never through a symlink), not hidden."""
        return {path.relative_to(self.local).as_posix() for path in self.local.rglob("*")
                if path.is_file() and not path.is_symlink() and is_inside(path, self.local)
                and not _hidden(path.relative_to(self.local).as_posix())}

    def _behind_symlink(self, name: str) -> bool:
        """Whether `name`'s local path is a symlink or lies under one (never synced: a file there is not
        uploaded, and its absence from the sync is no deletion to copy to the URL)."""
        path = self.local / name
        return any(p.is_symlink() for p in (path, *path.parents) if p != self.local and p.is_relative_to(self.local))

    def _changed_here(self, name: str) -> bool:
        path, known = self.local / name, self.manifest.get(name)
        if not path.is_file():
            return known is not None
        return known is None or {k: known.get(k) for k in ("size", "mtime_ns")} != _stat(path)

    def _download(self, name: str, version: str) -> None:
        target = self.local / name
        if not is_inside(target.parent, self.local):
            raise VavaError(f"{self.url}/{name}: leads outside the staging folder {self.local} (a symlink there?)")
        make_folder(target.parent, f"{self.url}/{name}: cannot make its folder in the staging folder {self.local}")
        with atomic_path(target) as tmp, self.url.errors(f"download {name}"):
            self.url.fs.get_file(f"{self.url.key}/{name}", str(tmp))
        self.manifest[name] = {"version": version, **_stat(target)}

    def _read_manifest(self) -> dict[str, dict[str, Any]]:
        path = self.local / SYNC_MANIFEST_NAME
        try:
            saved = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}  # none yet, or damaged: every file is then compared afresh (the URL's copy wins)
        files = saved.get("files") if isinstance(saved, dict) and saved.get("url") == str(self.url) else None
        if not isinstance(files, dict):
            return {}
        # a name that is no plain path was never written here: whoever wrote it, it must not lead a deletion outside
        return {n: e for n, e in files.items()
                if isinstance(e, dict) and isinstance(n, str) and _plain(n) and not _hidden(n)}

    def _write_manifest(self) -> None:
        atomic_write(self.local / SYNC_MANIFEST_NAME, json.dumps({"url": str(self.url), "files": self.manifest}, indent=1))

    @contextlib.contextmanager
    def _sync_lock(self) -> Iterator[None]:
        lock = FileLock(self.local / SYNC_LOCK_NAME)
        try:
            lock.acquire()
        except OSError as err:  # a symlink planted there (refused: O_NOFOLLOW), a read-only folder
            raise VavaError(f"{self.local / SYNC_LOCK_NAME}: cannot lock the staging folder of {self.url} "
                            f"({err.strerror or err}); remove it") from None
        try:
            yield
        finally:
            lock.release()


@contextlib.contextmanager
def staged(location: Path | RemotePath, command: str, *, writes: bool, wanted: Callable[[str], bool] | None = None,
           check: Callable[[set[str]], None] | None = None) -> Iterator[Path]:
    """The local folder `command` works in: `location` itself, or for a URL its synced staging folder.

    With `writes` the command holds the URL's lease and its changes are uploaded when the block ends, also
    when it fails; without (a reader, or a rank of a torchrun job other than 0, which writes nothing) it
    only pulls. `wanted` limits the pull to the files a reader needs (`vava evaluate --compare`: reports).
    `check` sees the names at the URL's top first (default: it must be empty or hold a run, so that a
    mistyped URL, a bucket's root say, is refused before anything is downloaded).
    """
    if not isinstance(location, RemotePath):
        yield location
        return
    with location.errors("look at the run"):
        if location.fs.isfile(location.key):  # checked before the lease, which would make it a folder too
            raise VavaError(f"{location}: is a file, not a run folder")
        try:
            listed = location.fs.ls(location.key, detail=False)
        except FileNotFoundError:  # nothing there yet
            listed = []
    names = {name.rstrip("/").rpartition("/")[2] for name in listed if name.strip("/") != location.key}
    names = {name for name in names if name and not name.startswith(".")}
    if check is not None:
        check(names)
    else:
        _empty_or_a_run(location, names)
    run = StagedRun(location)
    if writes:
        run.take_lease(command)
    try:
        _active[run.local] = run
        try:
            run.pull(wanted)
            yield run.local
        except BaseException as err:
            del _active[run.local]
            _reword(err, lambda text: text.replace(str(run.local), str(run.url)))
            if writes:  # upload what was done; if that fails too, the error says where it is kept
                try:
                    run.push()
                except VavaError:
                    _reword(err, lambda text: f"{text} (not uploaded: the run is kept in {run.local})")
            raise
        del _active[run.local]
        if writes:
            try:
                run.push()
            except VavaError as err:
                raise VavaError(f"{err}; the run is kept in {run.local}: rerun the command to upload it") from None
    finally:
        if writes:
            with contextlib.suppress(VavaError):  # a lease left behind names this process: the next run takes it over
                run.release_lease()


def _empty_or_a_run(url: RemotePath, names: set[str]) -> None:
    if names and not names & RUN_MARKERS:
        raise VavaError(f"{url}: holds no run folder (none of {', '.join(sorted(RUN_MARKERS))} at its top); "
                        "name a run's folder")


def publish(path: Path) -> None:
    """Upload what changed in the staged run folder holding `path` (nothing to do for a local run)."""
    for local, run in _active.items():
        if path == local or is_inside(path, local):
            run.push()


def _reword(err: BaseException, change: Callable[[str], str]) -> None:
    """Change the message of `err` (a `VavaError`, or a click usage error) in place, keeping its type."""
    err.args = tuple(change(arg) if isinstance(arg, str) else arg for arg in err.args)
    if isinstance(getattr(err, "message", None), str):
        err.message = change(err.message)


def _stat(path: Path) -> dict[str, int]:
    info = path.stat()
    return {"size": info.st_size, "mtime_ns": info.st_mtime_ns}


def _version(entry: dict[str, Any]) -> str:
    """What changes whenever an object is rewritten: its ETag where the storage has one."""
    for key in ("ETag", "etag", "md5Hash", "generation"):
        if entry.get(key):
            return str(entry[key])
    stamp = entry.get("LastModified") or entry.get("mtime") or entry.get("created")
    if isinstance(stamp, dt.datetime):  # some file systems give a time as a datetime in one call, a number in another
        stamp = stamp.timestamp()
    return f"{entry.get('size')}:{stamp}"


def _hidden(name: str) -> bool:
    return any(part.startswith(".") for part in name.split("/"))


def _plain(name: str) -> bool:
    """Whether `name` is a plain relative path: no empty, "." or ".." part, no "\\" or control characters, and
    no part longer than a file name may be (255 bytes)."""
    return bool(name) and not name.startswith("/") and "\\" not in name and not has_control_character(name) \
        and all(part not in ("", ".", "..") and len(part.encode(errors="replace")) <= 255 for part in name.split("/"))


def _checked_name(name: str, url: RemotePath) -> str:
    """`name` if it is a plain relative path (the URL's objects are untrusted)."""
    if not _plain(name):
        raise VavaError(f"{url}: holds an object named {name!r}, which is not a plain file path; remove it")
    return name


def _stale(holder: dict[str, Any], url: RemotePath) -> bool:
    """Whether a lease was left by a process of this host that no longer runs, or by an earlier command of
    this process (one that could not remove it, the storage being down)."""
    if holder.get("host") != socket.gethostname() or not isinstance(holder.get("pid"), int):
        return False
    if holder.get("pids", _process_space()) != _process_space():  # a container sharing the host name: its
        return False  # process numbers are not ours to look up
    if holder["pid"] == os.getpid():
        return all(run.url != url for run in _active.values())
    try:
        os.kill(holder["pid"], 0)
    except ProcessLookupError:
        return True
    except OSError:  # alive, another user's
        return False
    return False


def _process_space() -> str | None:
    """What makes a process number mean one process: this boot of the kernel and the PID namespace (containers
    that share a host name, e.g. Docker's --network host, each number their processes from 1)."""
    try:
        return f"{Path('/proc/sys/kernel/random/boot_id').read_text().strip()}/{os.readlink('/proc/self/ns/pid')}"
    except OSError:
        return None


def shown(path: Path, local: Path, location: Path | RemotePath) -> str:
    """`path`, inside the folder a command worked in (`local`), as the user named it: below the URL when staged."""
    if not isinstance(location, RemotePath):
        return str(path)
    relative = path.relative_to(local).as_posix()
    return str(location) if relative == "." else f"{location}/{relative}"
