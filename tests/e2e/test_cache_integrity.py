"""Feature-cache integrity: damage found on read, by verify and by extract; partial sets refused;
`cache rm` against a running extract; read-only caches; broken metadata in `cache ls/info/verify`."""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import zarr
from click.testing import CliRunner
from zarr.storage import LocalStore

from tests.conftest import write_toy_features
from vava.cache.locks import FileLock
from vava.cache.store import FRAMES_PER_SHARD
from vava.pipeline.cli import main

EXTRACT = ["extract", "--weights", "random", "--image-size", "64", "--quiet"]
SHARD_INDEX_ENTRY = 16  # (offset, nbytes) as two little-endian uint64 per chunk, then a 4-byte checksum


def run(*args: str):
    return CliRunner().invoke(main, list(args))


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


def one_line_error(output: str) -> str:
    lines = output.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in output, output
    return lines[0]


# -- 5: damage is found -------------------------------------------------------------------------


# -- issue 16, point 15: edited metadata of the same byte size ------------------------------------


# -- issue 16, point 13: a set knows its videos --------------------------------------------------


# -- 8: partial feature sets ----------------------------------------------------------------------


# -- 9: cache rm against a running extract -------------------------------------------------------


# -- 13: read-only caches ------------------------------------------------------------------------
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


# -- 14: broken metadata and stray folders --------------------------------------------------------
def test_cache_commands_report_broken_entries_and_go_on(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    good = write_toy_features(cache / "good000000000000")
    bad = write_toy_features(cache / "bad0000000000000", lengths=(5, 6))
    (bad / "zarr.json").write_text("{not json")
    (cache / "stray").mkdir()
    (good / "videos" / "toy2" / "zarr.json").write_text("{not json")
    (good / "videos" / "leftover" / "features").mkdir(parents=True)

    listing = run("cache", "ls", str(cache))
    assert listing.exit_code == 0, listing.output
    assert re.search(rf"skipped: {bad}: unreadable zarr.json \(JSONDecodeError: .*\)", listing.stderr)
    assert f"skipped: {cache / 'stray'}: not a feature set (no zarr.json" in listing.stderr
    assert re.search(rf"^{good}  .* 5/6  ", listing.stdout, re.M) and listing.stdout.startswith("path  ")

    info = run("cache", "info", str(good))
    assert info.exit_code == 0, info.output
    assert "videos:      5 complete, 2 incomplete" in info.stdout
    assert re.search(r"unreadable:  toy2: unreadable metadata \(JSONDecodeError: .*\)", info.stderr)
    assert "unreadable:  leftover: stray folder (no zarr.json)" in info.stderr

    verified = run("cache", "verify", str(good))
    assert verified.exit_code == 1
    assert re.search(r"damaged: toy2: unreadable metadata \(JSONDecodeError", verified.stderr)
    assert "damaged: leftover: stray folder (no zarr.json)" in verified.stderr
    assert "5 complete videos checked, 2 damaged, 0 incomplete" in verified.stdout

    broken = run("cache", "info", str(bad))
    assert broken.exit_code == 1 and re.fullmatch(r"Error: \S+: unreadable zarr.json \(JSONDecodeError: .*\)",
                                                  one_line_error(broken.output))


def test_verify_says_which_videos_predate_checksums(toy_features: Path) -> None:
    for video in zarr.open_group(str(toy_features / "videos"), mode="r+").group_values():
        del video.attrs["files"]  # as written by format 1
    result = run("cache", "verify", str(toy_features))
    assert result.exit_code == 0, result.output
    assert ("6 videos were written before checksums (cache format 1): only their shape and values were checked; "
            "extract again into a new feature set to protect them") in result.stderr
    assert "6 complete videos checked, 0 damaged, 0 incomplete" in result.stdout
