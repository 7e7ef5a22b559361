"""The zarr feature store: writing, completion, reading frames, info and verification; damage found on read
and named by train and embed; foreign video folders; metadata that is a FIFO; read-only reading; removal."""
from __future__ import annotations

import re
import shutil
import threading
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import make_folder_dataset, toy_inputs, write_toy_features
from tests.helpers import (
    EXTRACT,
    cli,
    fifo_at,
    flip_chunk_bytes,
    one_line_error,
    refused,
    shards,
    single_line,
    watch_store_opens,
    without_blocking,
)
from tests.stages.train.helpers import TINY, config
from vava.cache.inspect import describe, verify
from vava.cache.locks import creation_lock, lock_folder, set_lock, video_lock
from vava.cache.store import FRAMES_PER_SHARD, FeatureSet, open_feature_sets, remove_feature_set
from vava.core.embeddings_file import load_embeddings
from vava.core.errors import VavaError
from vava.pipeline.datasets.folder import load_folder
from vava.stages.embed.run import embed
from vava.stages.extract.run import ExtractOptions, extract
from vava.stages.train.loop import train

SHAPE = (8, 2, 2)


def new_set(tmp_path: Path, name: str = "fp0") -> FeatureSet:
    return FeatureSet.create(tmp_path / name, name, toy_inputs(2), {"dataset": {"root": "/data"}})


def write(fs: FeatureSet, video_id: str, frames: int, seed: int = 0, block: int = 10) -> np.ndarray:
    data = np.random.default_rng(seed).standard_normal((frames, *SHAPE)).astype(np.float16)
    writer = fs.begin_video(video_id, SHAPE, {"split": "train", "action": "a", "phases": ["x", "y"]})
    for start in range(0, frames, block):
        writer.append(data[start:start + block])
    writer.finish(np.arange(frames) % 2, np.arange(frames), {"decoded_frames": frames, "fps": 15.0})
    return data


def test_round_trip_and_random_frame_reads(tmp_path: Path) -> None:
    fs = new_set(tmp_path)
    data = write(fs, "a", FRAMES_PER_SHARD + 9)
    again = FeatureSet.open(tmp_path / "fp0")
    assert again.fingerprint == "fp0" and again.attrs["dataset"] == {"root": "/data"}
    video = again.video("a")
    assert (video.num_frames, video.decoded_frames, video.split, video.phases) == (41, 41, "train", ("x", "y"))
    assert np.array_equal(again.read("a"), data)
    picks = [40, 3, 3, 0, 33]  # unsorted, repeated, across shards
    assert np.array_equal(again.read("a", picks), data[picks])
    assert np.array_equal(again.read("a", slice(5, 9)), data[5:9])
    assert again.labels("a").tolist() == (np.arange(41) % 2).tolist()
    assert again.frame_shape("a") == SHAPE
    with pytest.raises(IndexError, match="has 41 frames"):
        again.read("a", [41])
    loaded = again.load(device="cpu")
    assert set(loaded) == {"a"} and loaded["a"].shape == (41, *SHAPE)


def test_incomplete_video_is_never_listed_or_read(tmp_path: Path) -> None:
    fs = new_set(tmp_path)
    write(fs, "done", 5)
    writer = fs.begin_video("half", SHAPE, {"split": "val", "action": "a"})
    writer.append(np.zeros((4, *SHAPE), np.float16))  # killed before finish()
    assert [v.id for v in fs.videos()] == ["done"]
    assert [v.id for v in fs.videos(include_incomplete=True)] == ["done", "half"]
    assert not fs.is_complete("half") and fs.is_complete("done") and not fs.is_complete("absent")
    with pytest.raises(VavaError, match="video 'half' is incomplete"):
        fs.read("half")
    with pytest.raises(VavaError, match="no video 'absent'"):
        fs.labels("absent")
    # restarting the video drops the partial data
    data = write(fs, "half", 3, seed=1)
    assert np.array_equal(fs.read("half"), data)


def test_finish_cuts_to_label_count(tmp_path: Path) -> None:
    fs = new_set(tmp_path)
    writer = fs.begin_video("a", SHAPE, {})
    data = np.ones((12, *SHAPE), np.float16)
    writer.append(data)
    writer.finish(np.zeros(10, np.int64), np.arange(10), {})
    assert fs.read("a").shape == (10, *SHAPE)


def test_describe_verify_and_remove(tmp_path: Path) -> None:
    fs = new_set(tmp_path)
    write(fs, "a", 20)
    write(fs, "b", 35, seed=2)
    fs.begin_video("c", SHAPE, {}).append(np.zeros((2, *SHAPE), np.float16))
    info = describe(fs)
    assert (info["videos_complete"], info["videos_incomplete"], info["frames"]) == (2, 1, 55)
    assert info["bytes_raw_float16"] == 55 * 32 * 2 and info["bytes_on_disk"] > 0
    report = verify(fs)
    assert report.checked == 2 and report.incomplete == ["c"] and not report.damaged and not report.ok

    shard = next((tmp_path / "fp0" / "videos" / "b" / "features").rglob("c/1/*/*/*"))
    shard.write_bytes(b"\x00" * 40)  # damage the second shard of video b
    report = verify(FeatureSet.open(tmp_path / "fp0"))
    assert list(report.damaged) == ["b"] and "unreadable" in report.damaged["b"]

    assert [s.fingerprint for s in open_feature_sets(tmp_path)] == ["fp0"]
    remove_feature_set(tmp_path / "fp0")
    assert open_feature_sets(tmp_path) == []


def test_open_rejects_non_feature_sets(tmp_path: Path) -> None:
    with pytest.raises(VavaError, match="not a feature set"):
        FeatureSet.open(tmp_path)
    with pytest.raises(VavaError, match="does not exist"):
        open_feature_sets(tmp_path / "missing")


def test_flags_are_stored_checksummed_when_given(tmp_path: Path) -> None:
    fs = new_set(tmp_path)
    flags = np.array([0, 1, 2, 4, 6, 0], dtype=np.uint8)
    writer = fs.begin_video("f", SHAPE, {})
    writer.append(np.zeros((6, *SHAPE), np.float16))
    writer.finish(np.zeros(6, np.int64), np.arange(6), {}, flags)
    write(fs, "plain", 4)
    again = FeatureSet.open(fs.path)
    assert again.flags("f").dtype == np.uint8 and again.flags("f").tolist() == flags.tolist()
    assert again.flags("plain").tolist() == [0, 0, 0, 0]
    (fs.path / "videos/f/flags/c/0").unlink()  # its size is recorded like every other file's
    with pytest.raises(VavaError, match="video 'f' is damaged: flags/c/0 is missing"):
        FeatureSet.open(fs.path).flags("f")
    bad = fs.begin_video("bad", SHAPE, {})
    bad.append(np.zeros((3, *SHAPE), np.float16))
    with pytest.raises(ValueError, match="2 flags for 3 labels"):
        bad.finish(np.zeros(3, np.int64), np.arange(3), {}, flags[:2])


def test_ids_starting_with_two_underscores_are_stored_under_an_escaped_name(tmp_path: Path) -> None:
    fs = new_set(tmp_path)
    youtube = write(fs, "__9c5VYjqsw", 3, seed=1)  # a real YouTube id; zarr reserves names starting with "__"
    lookalike = write(fs, "%5F_9c5VYjqsw", 2, seed=2)  # an id spelled like the escaped name stays apart
    write(fs, "b", 2)
    assert sorted(p.name for p in (fs.path / "videos").iterdir() if p.is_dir()) == \
        ["%255F_9c5VYjqsw", "%5F_9c5VYjqsw", "b"]
    again = FeatureSet.open(fs.path)
    assert [v.id for v in again.videos()] == ["%5F_9c5VYjqsw", "__9c5VYjqsw", "b"]
    assert np.array_equal(again.read("__9c5VYjqsw"), youtube) and np.array_equal(again.read("%5F_9c5VYjqsw"), lookalike)
    report = verify(again)
    assert again.file_problem("__9c5VYjqsw") is None and report.ok and report.checked == 3
    with fs.writing():
        fs.remove_video("__9c5VYjqsw")
    assert [v.id for v in FeatureSet.open(fs.path).videos()] == ["%5F_9c5VYjqsw", "b"]


def test_a_folder_no_id_is_stored_under_is_listed_as_stray(tmp_path: Path) -> None:
    fs = new_set(tmp_path)
    write(fs, "a", 2)
    (fs.path / "videos" / "%zz").mkdir()
    assert [(v.id, v.problem) for v in fs.videos(include_incomplete=True)] == [
        ("%zz", "stray folder (its name is no video id's stored name)"), ("a", None)]
    assert [v.id for v in fs.videos()] == ["a"]


def test_no_video_id_names_the_sets_own_locks(tmp_path: Path) -> None:
    fs = new_set(tmp_path)
    for video_id, owner in (("set", set_lock(fs.path, shared=True)), ("create", creation_lock(fs.path))):
        assert video_lock(fs.path, video_id).path != owner.path
    assert video_lock(fs.path, "__x").path.name == "%5F_x.lock"


# -- damage is found on read, by verify, and named by the stages that read -------------------------


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
    result = cli("cache", "verify", str(toy_features))
    assert result.exit_code == 1
    assert "damaged: toy1: unreadable (features/c/1/0/0/0 is missing)" in result.output
    assert "6 complete videos checked, 1 damaged, 0 incomplete" in result.output


def test_train_and_embed_name_the_damaged_video_in_one_line(toy_features: Path, tmp_path: Path) -> None:
    flip_chunk_bytes(toy_features, "toy1")
    sets = [arg for item in TINY for arg in ("--set", item)]
    # zarr data path: the frames are read in a DataLoader worker process
    result = cli("train", "--features", str(toy_features), "--out", str(tmp_path / "run"), "--steps", "6", "--quiet",
                 "--device", "cpu", *sets, "--set", "data.path=zarr", "--set", "data.workers=1")
    assert result.exit_code == 1
    assert re.fullmatch(r"Error: \S+toyfeatures00000: video 'toy1' is damaged: ValueError: Stored and computed "
                        r"checksum do not match.*--repair` with the same options\)", single_line(result.output))
    with pytest.raises(VavaError, match=r"video 'toy1' is damaged: ValueError: Stored and computed checksum"):
        embed(tmp_path / "identity", toy_features, identity=True, progress=False)


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
    result = cli("train", "--features", str(toy_features), "--out", str(tmp_path / "run"), "--steps", "2", "--quiet",
                 *sets, "--set", "data.path=host")
    assert result.exit_code == 1 and single_line(result.stderr).startswith(f"Error: {damaged}")


# -- video folders copied in from another set are foreign: reported and ignored --------------------


def test_foreign_video_folders_are_reported_and_ignored(tiny_dataset: Path, tmp_path: Path) -> None:
    """Folders copied or linked into `videos/` from another set (other frame shape), new ids or an id of the set."""
    cache = tmp_path / "cache"
    ours = Path(cli(*EXTRACT, "--root", str(tiny_dataset), "--cache", str(cache)).stdout.splitlines()[-1])
    make_folder_dataset(tmp_path / "other", [10, 12, 14, 16])
    theirs = Path(cli(*EXTRACT[:-2], "32", "--quiet", "--root", str(tmp_path / "other"),
                      "--cache", str(cache)).stdout.splitlines()[-1])
    shutil.copytree(theirs / "videos" / "v3", ours / "videos" / "v3")
    (ours / "videos" / "v9").symlink_to(theirs / "videos" / "v2")
    shutil.rmtree(ours / "videos" / "v1")
    shutil.copytree(theirs / "videos" / "v1", ours / "videos" / "v1")

    result = cli("cache", "verify", str(ours))
    assert result.exit_code == 1
    assert result.stdout == "2 complete videos checked, 0 damaged, 0 incomplete, 3 foreign\n"
    assert [line for line in result.stderr.splitlines() if line.startswith("foreign: ")] == [
        f"foreign: {video}: not one of the videos this feature set was extracted for (copied from another set?); "
        f"train and embed ignore it: move it out of {ours / 'videos'}" for video in ("v1", "v3", "v9")]
    info = cli("cache", "info", str(ours))
    assert "videos:      2 complete, 0 incomplete" in info.stdout and info.stderr.count("foreign:     ") == 3
    with pytest.raises(VavaError, match=r"only 2 of 3 videos are extracted"):  # v1 is not counted as ours
        embed(tmp_path / "identity", ours, identity=True, progress=False)
    with pytest.raises(VavaError, match=r"video folder 'v3' is not one of the videos this feature set was extracted"):
        FeatureSet.open(ours).read("v3")

    again = cli(*EXTRACT, "--root", str(tiny_dataset), "--cache", str(cache))  # v1 is extracted again, in place
    assert "3 videos: 1 extracted" in again.stderr and "2 already cached" in again.stderr
    assert cli("cache", "verify", str(ours)).stdout == "3 complete videos checked, 0 damaged, 0 incomplete, 2 foreign\n"
    path = embed(tmp_path / "identity", ours, identity=True, progress=False)
    assert [v.id for v in load_embeddings(path).videos] == ["v1", "v2", "v0"]
    sets = [arg for item in TINY for arg in ("--set", item)]
    trained = cli("train", "--features", str(ours), "--out", str(tmp_path / "run"), "--steps", "1", "--quiet", *sets)
    assert trained.exit_code == 0, trained.output
    assert (theirs / "videos" / "v2" / "zarr.json").is_file()  # nothing of the other set was touched


# -- metadata that is a FIFO: the video is left out, the set refused -------------------------------


@pytest.mark.parametrize("command", ["verify", "info", "train", "embed"])
def test_a_video_zarr_json_that_is_a_fifo_is_reported_and_the_video_left_out(toy_features: Path, tmp_path: Path,
                                                                          command: str) -> None:
    fifo = fifo_at(toy_features / "videos" / "toy1" / "zarr.json")
    problem = f"toy1: unreadable metadata ({fifo}: not a regular file (a FIFO); only plain files are read)"
    # train and embed refuse a set short of a video unless --allow-partial: then the video is left out
    args = {"verify": ["cache", "verify", toy_features], "info": ["cache", "info", toy_features],
            "train": ["train", "--features", toy_features, "--out", tmp_path / "run", "--config", "synthetic",
                      "--steps", 1, "--set", "data.batch_pairs=1", "--quiet", "--allow-partial"],
            "embed": ["embed", "--run", tmp_path / "run", "--identity", "--features", toy_features, "--quiet",
                      "--allow-partial"]}[command]
    result = without_blocking(lambda: cli(*args), fifo)
    if command == "verify":
        assert result.exit_code == 1 and f"damaged: {problem}\n" in result.stderr
        assert result.stdout.endswith("5 complete videos checked, 1 damaged, 0 incomplete\n")
    elif command == "info":
        assert result.exit_code == 0 and result.stderr == f"unreadable:  {problem}\n"
        assert "videos:      5 complete, 1 incomplete" in result.stdout
    elif command == "train":  # toy1 was one of the two train videos of action 'a'
        assert result.exit_code == 1 and "no pair of distinct train videos for action(s) 'a'" in result.stderr
    else:
        assert result.exit_code == 0, result.output
        from vava.core.embeddings_file import load_embeddings
        assert [v.id for v in load_embeddings(tmp_path / "run" / "embeddings.h5").videos] == [
            "toy0", "toy3", "toy4", "toy2", "toy5"]


def test_a_feature_set_zarr_json_that_is_a_fifo_is_refused(toy_features: Path) -> None:
    fifo = fifo_at(toy_features / "zarr.json")
    refused(without_blocking(lambda: cli("cache", "info", toy_features), fifo), fifo)


# -- reading opens the store read-only -------------------------------------------------------------


def test_reading_opens_the_cache_read_only(toy_features: Path, tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    store_opens = watch_store_opens(monkeypatch)
    for args in (["ls", str(toy_features.parent)], ["info", str(toy_features)], ["verify", str(toy_features)]):
        assert cli("cache", *args).exit_code == 0
    train(toy_features, tmp_path / "run", config("steps=1"), device="cpu", progress=False)
    embed(tmp_path / "run", progress=False, device="cpu")
    assert store_opens and all(read_only for _, read_only in store_opens), store_opens


# -- removal: never while extract writes, never a folder that is not exactly a feature set ---------


def test_cache_rm_refuses_while_extract_writes(tiny_dataset: Path, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    cache, attempts = tmp_path / "cache", []
    begin_video = FeatureSet.begin_video

    def remove_meanwhile(self: FeatureSet, *args, **kwargs):
        if not attempts:  # `vava cache rm` from another shell, while the first video is written
            attempts.append(cli("cache", "rm", "--yes", str(self.path)))
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
    assert single_line(attempts[0].output) == (f"Error: {summary.path}: a running `vava extract` is writing into "
                                                   "this feature set; remove it once that has finished")
    assert summary.ok and sorted(summary.extracted) == ["v0", "v1", "v2"]
    assert verify(FeatureSet.open(summary.path)).ok
    monkeypatch.undo()
    assert cli("cache", "rm", "--yes", str(summary.path)).exit_code == 0
    assert not summary.path.exists() and not lock_folder(summary.path).exists()


def test_writer_finds_a_set_removed_before_it_took_the_lock(tmp_path: Path) -> None:
    feature_set = write_toy_features(tmp_path / "fp")
    opened = FeatureSet.open(feature_set)
    remove_feature_set(feature_set)
    with pytest.raises(VavaError, match=r"fp: the feature set was removed \(`vava cache rm`\) meanwhile"):
        with opened.writing():
            pass


def test_cache_rm_refuses_a_symlink_and_keeps_the_set(toy_features: Path, tmp_path: Path) -> None:
    link = tmp_path / "link"
    link.symlink_to(toy_features)
    one_line_error(cli("cache", "rm", "--yes", link), rf"{re.escape(str(link))}: is a symlink")
    assert (toy_features / "zarr.json").is_file()


def test_cache_rm_through_dotdot_takes_the_sets_own_lock(toy_features: Path) -> None:
    from vava.cache.locks import set_lock

    with set_lock(toy_features, shared=True):  # an extract writing into the set
        one_line_error(cli("cache", "rm", "--yes", toy_features / "videos" / ".."), r"a running `vava extract`")
    assert (toy_features / "zarr.json").is_file()


@pytest.mark.parametrize("name", ["mine", "toyfeatures00000"])
def test_cache_rm_refuses_a_folder_that_is_not_exactly_a_feature_set(toy_features: Path, tmp_path: Path,
                                                                      name: str) -> None:
    """A copy of a set's root zarr.json in a folder of other files (named anyhow, or like the set)."""
    folder = tmp_path / "elsewhere" / name
    folder.mkdir(parents=True)
    shutil.copy(toy_features / "zarr.json", folder / "zarr.json")
    (folder / "videos").mkdir()
    (folder / "thesis.tex").write_text("years of work")
    expected = ("its zarr.json is that of feature set 'toyfeatures00000', whose folder bears that name; this folder "
                "is not one, so nothing was removed" if name == "mine"
                else "holds more than a feature set ('thesis.tex'); nothing was removed")
    one_line_error(cli("cache", "rm", "--yes", folder), rf"^Error: {re.escape(f'{folder}: {expected}')}$")
    assert (folder / "thesis.tex").read_text() == "years of work"
    result = cli("cache", "rm", "--yes", toy_features)  # the set itself still goes
    assert result.exit_code == 0 and not toy_features.exists()
