"""Feature-cache integrity: damage found on read, by verify and by extract; partial sets refused;
`cache rm` against a running extract; read-only caches; broken metadata in `cache ls/info/verify`."""
from __future__ import annotations

import re
import shutil
import threading
from pathlib import Path

import numpy as np
import pytest
import zarr
from click.testing import CliRunner
from zarr.storage import LocalStore

from tests.conftest import make_folder_dataset, toy_inputs, write_toy_features
from tests.stages.train.helpers import TINY, config
from vava.cache.inspect import verify
from vava.cache.locks import FileLock, lock_folder, set_lock
from vava.cache.store import FRAMES_PER_SHARD, FeatureSet, remove_feature_set
from vava.core.embeddings_file import load_embeddings
from vava.core.errors import VavaError
from vava.pipeline.cli import main
from vava.pipeline.datasets.folder import load_folder
from vava.stages.embed.run import embed
from vava.stages.extract.run import ExtractOptions, extract
from vava.stages.train.loop import train

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
def test_flipped_bytes_fail_their_checksums_on_read_and_in_verify(toy_features: Path) -> None:
    flip_chunk_bytes(toy_features, "toy1")
    feature_set = FeatureSet.open(toy_features)
    with pytest.raises(VavaError, match=r"video 'toy1' is damaged: ValueError: Stored and computed checksum do not "
                                        r"match.*\(re-extract it: `extract\(repair=True\)` with the same options\)$"):
        feature_set.read("toy1", [3])
    assert np.isfinite(feature_set.read("toy0")).all()  # the others still read
    report = verify(feature_set)
    assert report.checked == 6 and list(report.damaged) == ["toy1"] and not report.ok
    assert re.fullmatch(r"unreadable \(ValueError: Stored and computed checksum do not match.*\)",
                        report.damaged["toy1"])


def test_deleted_shard_is_found_on_read_and_in_verify(toy_features: Path) -> None:
    second = shards(toy_features, "toy1")[1]  # toy1 has 36 frames: two shards
    second.unlink()
    feature_set = FeatureSet.open(toy_features)
    with pytest.raises(VavaError, match=r"video 'toy1' is damaged: features/c/1/0/0/0 is missing"):
        feature_set.read("toy1", [0])
    with pytest.raises(VavaError, match=r"video 'toy1' is damaged"):
        feature_set.labels("toy1")
    assert verify(feature_set).damaged == {"toy1": "unreadable (features/c/1/0/0/0 is missing)"}
    result = run("cache", "verify", str(toy_features))
    assert result.exit_code == 1
    assert "damaged: toy1: unreadable (features/c/1/0/0/0 is missing)" in result.output
    assert "6 complete videos checked, 1 damaged, 0 incomplete" in result.output


def test_train_and_embed_name_the_damaged_video_in_one_line(toy_features: Path, tmp_path: Path) -> None:
    flip_chunk_bytes(toy_features, "toy1")
    sets = [arg for item in TINY for arg in ("--set", item)]
    # zarr data path: the frames are read in a DataLoader worker process
    result = run("train", "--features", str(toy_features), "--out", str(tmp_path / "run"), "--steps", "6", "--quiet",
                 "--device", "cpu", *sets, "--set", "data.path=zarr", "--set", "data.workers=1")
    assert result.exit_code == 1
    assert re.fullmatch(r"Error: \S+toyfeatures00000: video 'toy1' is damaged: ValueError: Stored and computed "
                        r"checksum do not match.*--repair` with the same options\)", one_line_error(result.output))
    with pytest.raises(VavaError, match=r"video 'toy1' is damaged: ValueError: Stored and computed checksum"):
        embed(tmp_path / "identity", toy_features, identity=True, progress=False)


def test_extract_repairs_damaged_videos(tiny_dataset: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    path = Path(run(*EXTRACT, "--root", str(tiny_dataset), "--cache", str(cache)).stdout.strip().splitlines()[-1])
    original = {v: FeatureSet.open(path).read(v) for v in ("v0", "v1", "v2")}
    shards(path, "v2")[0].unlink()
    flip_chunk_bytes(path, "v1")

    again = run(*EXTRACT, "--root", str(tiny_dataset), "--cache", str(cache))  # stat-only check: finds the deletion
    assert again.exit_code == 0, again.output
    assert "damaged, extracted again: v2: unreadable (features/c/0/0/0/0 is missing)" in again.stderr
    assert "3 videos: 1 extracted" in again.stderr and "2 already cached" in again.stderr

    repaired = run(*EXTRACT, "--root", str(tiny_dataset), "--cache", str(cache), "--repair")
    assert repaired.exit_code == 0, repaired.output
    assert re.search(r"damaged, extracted again: v1: unreadable \(ValueError: Stored and computed checksum",
                     repaired.stderr)
    assert "3 videos: 1 extracted" in repaired.stderr and "2 already cached" in repaired.stderr
    feature_set = FeatureSet.open(path)
    assert verify(feature_set).ok
    assert np.array_equal(feature_set.read("v0"), original["v0"])  # untouched
    for video_id in ("v1", "v2"):  # extracted again, in other backbone batches
        again, want = feature_set.read(video_id).astype(np.float32), original[video_id].astype(np.float32)
        assert np.allclose(again, want, rtol=1e-2, atol=1e-3 * np.abs(want).max())


def test_extract_says_which_damaged_videos_it_could_not_extract_again(tiny_dataset: Path, tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    import vava.stages.extract.run as extract_run

    cache = tmp_path / "cache"
    path = Path(run(*EXTRACT, "--root", str(tiny_dataset), "--cache", str(cache)).stdout.strip().splitlines()[-1])
    shards(path, "v2")[0].unlink()
    decoder = extract_run.VideoDecoder

    def unreadable_v2(record, *args):
        if record.id == "v2":
            raise VavaError("video 'v2': cannot be decoded any more")
        yield from decoder(record, *args)

    monkeypatch.setattr(extract_run, "VideoDecoder", unreadable_v2)
    result = run(*EXTRACT, "--root", str(tiny_dataset), "--cache", str(cache))
    assert result.exit_code == 1
    assert result.stderr.splitlines()[:2] == [
        "damaged, not repaired (see failed): v2: unreadable (features/c/0/0/0/0 is missing)",
        "failed: video 'v2': cannot be decoded any more"]


# -- issue 16, point 15: edited metadata of the same byte size ------------------------------------
@pytest.mark.parametrize(("member", "old", "new", "problem"), [
    ("features/zarr.json", "16,\n    2,\n    2\n  ],\n  \"data_type", "16,\n    4,\n    1\n  ],\n  \"data_type",
     "features has shape (30, 16, 4, 1), its metadata says (30, 16, 2, 2)"),
    ("zarr.json", '"num_frames": 30,', '"num_frames": 60,', "features has shape (30, 16, 2, 2), its metadata says "
                                                           "(60, 16, 2, 2)"),
])
def test_an_edited_shape_or_frame_count_is_damage_named_in_the_feature_set(toy_features: Path, tmp_path: Path,
                                                                           member: str, old: str, new: str,
                                                                           problem: str) -> None:
    path = toy_features / "videos" / "toy0" / member
    text = path.read_text()
    assert text.count(old) == 1 and len(new) == len(old)
    path.write_text(text.replace(old, new))  # same size: the recorded file sizes still match

    assert verify(FeatureSet.open(toy_features)).damaged == {"toy0": f"unreadable ({problem})"}
    damaged = f"{toy_features}: video 'toy0' is damaged: {problem} (re-extract it"
    with pytest.raises(VavaError, match=re.escape(damaged)):  # not blamed on the embeddings file
        embed(tmp_path / "identity", toy_features, identity="time", progress=False)
    sets = [arg for item in TINY for arg in ("--set", item)]
    result = run("train", "--features", str(toy_features), "--out", str(tmp_path / "run"), "--steps", "2", "--quiet",
                 *sets, "--set", "data.path=host")
    assert result.exit_code == 1 and one_line_error(result.stderr).startswith(f"Error: {damaged}")


# -- issue 16, point 13: a set knows its videos --------------------------------------------------
def test_foreign_video_folders_are_reported_and_ignored(tiny_dataset: Path, tmp_path: Path) -> None:
    """Folders copied or linked into `videos/` from another set (other frame shape), new ids or an id of the set."""
    cache = tmp_path / "cache"
    ours = Path(run(*EXTRACT, "--root", str(tiny_dataset), "--cache", str(cache)).stdout.splitlines()[-1])
    make_folder_dataset(tmp_path / "other", [10, 12, 14, 16])
    theirs = Path(run(*EXTRACT[:-2], "32", "--quiet", "--root", str(tmp_path / "other"),
                      "--cache", str(cache)).stdout.splitlines()[-1])
    shutil.copytree(theirs / "videos" / "v3", ours / "videos" / "v3")
    (ours / "videos" / "v9").symlink_to(theirs / "videos" / "v2")
    shutil.rmtree(ours / "videos" / "v1")
    shutil.copytree(theirs / "videos" / "v1", ours / "videos" / "v1")

    result = run("cache", "verify", str(ours))
    assert result.exit_code == 1
    assert result.stdout == "2 complete videos checked, 0 damaged, 0 incomplete, 3 foreign\n"
    assert [line for line in result.stderr.splitlines() if line.startswith("foreign: ")] == [
        f"foreign: {video}: not one of the videos this feature set was extracted for (copied from another set?); "
        f"train and embed ignore it: move it out of {ours / 'videos'}" for video in ("v1", "v3", "v9")]
    info = run("cache", "info", str(ours))
    assert "videos:      2 complete, 0 incomplete" in info.stdout and info.stderr.count("foreign:     ") == 3
    with pytest.raises(VavaError, match=r"only 2 of 3 videos are extracted"):  # v1 is not counted as ours
        embed(tmp_path / "identity", ours, identity=True, progress=False)
    with pytest.raises(VavaError, match=r"video folder 'v3' is not one of the videos this feature set was extracted"):
        FeatureSet.open(ours).read("v3")

    again = run(*EXTRACT, "--root", str(tiny_dataset), "--cache", str(cache))  # v1 is extracted again, in place
    assert "3 videos: 1 extracted" in again.stderr and "2 already cached" in again.stderr
    assert run("cache", "verify", str(ours)).stdout == "3 complete videos checked, 0 damaged, 0 incomplete, 2 foreign\n"
    path = embed(tmp_path / "identity", ours, identity=True, progress=False)
    assert [v.id for v in load_embeddings(path).videos] == ["v1", "v2", "v0"]
    sets = [arg for item in TINY for arg in ("--set", item)]
    trained = run("train", "--features", str(ours), "--out", str(tmp_path / "run"), "--steps", "1", "--quiet", *sets)
    assert trained.exit_code == 0, trained.output
    assert (theirs / "videos" / "v2" / "zarr.json").is_file()  # nothing of the other set was touched


# -- 8: partial feature sets ----------------------------------------------------------------------
@pytest.fixture
def partial_features(tmp_path: Path) -> Path:
    """Six of the eight videos its manifest listed (an interrupted extract)."""
    path = tmp_path / "cache" / "partial000000000"
    FeatureSet.create(path, path.name, toy_inputs(8), {})
    return write_toy_features(path)


def test_train_and_embed_refuse_a_partial_set_unless_allowed(partial_features: Path, tmp_path: Path,
                                                            capsys: pytest.CaptureFixture) -> None:
    refused = r"partial000000000: only 6 of 8 videos are extracted \(2 missing or incomplete\); finish them with " \
              r"`vava extract`, or pass allow_partial to use these 6$"
    with pytest.raises(VavaError, match=refused):
        train(partial_features, tmp_path / "run", config("steps=2"), progress=False)
    assert not (tmp_path / "run").exists()
    with pytest.raises(VavaError, match=refused):
        embed(tmp_path / "identity", partial_features, identity=True, progress=False)

    summary = train(partial_features, tmp_path / "run", config("steps=2"), progress=False, allow_partial=True)
    assert summary.steps == 2
    assert embed(tmp_path / "run", progress=False, allow_partial=True).is_file()
    warning = "only 6 of 8 videos are extracted (2 missing or incomplete); going on with them (allow_partial)"
    assert capsys.readouterr().err.count(warning) == 2


def test_cli_allow_partial(partial_features: Path, tmp_path: Path) -> None:
    sets = [arg for item in TINY for arg in ("--set", item)]
    args = ["train", "--features", str(partial_features), "--out", str(tmp_path / "run"), "--steps", "1", "--quiet",
            "--device", "cpu", *sets]
    refused = run(*args)
    assert refused.exit_code == 1 and "only 6 of 8 videos are extracted" in one_line_error(refused.output)
    assert run(*args, "--allow-partial").exit_code == 0
    embedded = run("embed", "--run", str(tmp_path / "run"), "--quiet", "--device", "cpu", "--allow-partial")
    assert embedded.exit_code == 0 and "going on with them (--allow-partial)" in embedded.stderr
    assert run("embed", "--run", str(tmp_path / "run"), "--quiet", "--device", "cpu").exit_code == 1


# -- 9: cache rm against a running extract -------------------------------------------------------
def test_cache_rm_refuses_while_extract_writes(tiny_dataset: Path, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    cache, attempts = tmp_path / "cache", []
    begin_video = FeatureSet.begin_video

    def remove_meanwhile(self: FeatureSet, *args, **kwargs):
        if not attempts:  # `vava cache rm` from another shell, while the first video is written
            attempts.append(run("cache", "rm", "--yes", str(self.path)))
        return begin_video(self, *args, **kwargs)

    monkeypatch.setattr(FeatureSet, "begin_video", remove_meanwhile)
    done = {}
    options = ExtractOptions(weights="random", image_size=64, progress=False)
    records = load_folder(tiny_dataset)
    extracting = threading.Thread(target=lambda: done.update(summary=extract(records, cache, options)), daemon=True)
    extracting.start()
    extracting.join(120)
    assert "summary" in done, "extract failed or hung after `cache rm`"
    summary = done["summary"]
    assert attempts[0].exit_code == 1
    assert one_line_error(attempts[0].output) == (f"Error: {summary.path}: a running `vava extract` is writing into "
                                                   "this feature set; remove it once that has finished")
    assert summary.ok and sorted(summary.extracted) == ["v0", "v1", "v2"]
    assert verify(FeatureSet.open(summary.path)).ok
    monkeypatch.undo()
    assert run("cache", "rm", "--yes", str(summary.path)).exit_code == 0
    assert not summary.path.exists() and not lock_folder(summary.path).exists()


def test_writer_finds_a_set_removed_before_it_took_the_lock(tmp_path: Path) -> None:
    feature_set = write_toy_features(tmp_path / "fp")
    opened = FeatureSet.open(feature_set)
    remove_feature_set(feature_set)
    with pytest.raises(VavaError, match=r"fp: the feature set was removed \(`vava cache rm`\) meanwhile"):
        with opened.writing():
            pass


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


def test_reading_opens_the_cache_read_only(toy_features: Path, tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    store_opens = watch_store_opens(monkeypatch)
    for args in (["ls", str(toy_features.parent)], ["info", str(toy_features)], ["verify", str(toy_features)]):
        assert run("cache", *args).exit_code == 0
    train(toy_features, tmp_path / "run", config("steps=1"), device="cpu", progress=False)
    embed(tmp_path / "run", progress=False, device="cpu")
    assert store_opens and all(read_only for _, read_only in store_opens), store_opens


def test_extract_of_a_fully_cached_set_writes_nothing(tiny_dataset: Path, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    cache = tmp_path / "cache"
    path = run(*EXTRACT, "--root", str(tiny_dataset), "--cache", str(cache)).stdout.strip().splitlines()[-1]
    shutil.rmtree(cache / ".locks")
    opened = watch_store_opens(monkeypatch)
    again = run(*EXTRACT, "--root", str(tiny_dataset), "--cache", str(cache))
    assert again.exit_code == 0 and again.stdout.strip().splitlines()[-1] == path
    assert "3 already cached" in again.stderr
    assert not (cache / ".locks").exists() and opened and all(read_only for _, read_only in opened)


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
