"""COIN adapter on the tiny copy in the real format: seconds -> frame labels at 10 fps, step remapping, task
choice, the seeded 60/40 split, split files (and `--write-split` round trips), missing videos, errors and
extraction."""
from __future__ import annotations

import functools
import json
import re
from pathlib import Path

import av
import numpy as np
import pytest
from click.testing import CliRunner

from tests.pipeline.datasets.helpers import records_by_id
from vava.cache.store import FeatureSet
from vava.core.errors import VavaError
from vava.core.videoio import write_video
from vava.pipeline.cli import main
from vava.pipeline.datasets import load_dataset
from vava.pipeline.datasets.coin import VAVA_TASKS, draw_split, select_tasks, write_fixture
from vava.stages.extract.run import ExtractOptions, extract

RJ45 = "MakeRJ45Cable"  # steps: id 21 "strip the insulation", id 20 "arrange the separated wire"
RJ45_VIDEOS = Path("videos", "0")  # its recipe_type is 0: the fixture saves files as download_videos.py does
# At 10 fps: rj45-0 [0.25, 0.5] s step 21 -> frames 2..5; rj45-1 [0, 0.3] s step 21 -> 0..3 and [1.0, 1.45] s
# step 20 -> 10..14; rj45-2 [1.5, 3.0] s step 20 -> 15..19 (cut at the last frame); rj45-3 [0.5, 0.9] s step 20
# -> 5..9 and [1.2, 1.5] s step 21 -> 12..15. Step 20 -> phase 1, 21 -> phase 2.
RJ45_LABELS = {
    "rj45-0": [0, 0, 2, 2, 2, 2] + [0] * 14,
    "rj45-1": [2, 2, 2, 2, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0],
    "rj45-2": [0] * 15 + [1] * 5,
    "rj45-3": [0] * 5 + [1] * 5 + [0, 0] + [2] * 4 + [0] * 4,
}


@pytest.fixture
def root(tmp_path: Path) -> Path:
    write_fixture(tmp_path / "coin")
    return tmp_path / "coin"


load = functools.partial(records_by_id, "coin")


def edit_database(root: Path, change) -> None:
    path = root / "COIN.json"
    document = json.loads(path.read_text())
    change(document["database"])
    path.write_text(json.dumps(document))


def test_segments_in_seconds_become_frame_labels_with_background_zero(root: Path) -> None:
    records = load(root)
    assert len(records) == 24 and [r.action for r in records.values()][::4] == list(VAVA_TASKS)
    for video_id, labels in RJ45_LABELS.items():
        record = records[video_id]
        assert record.labels.tolist() == labels and record.fps == 10.0 and record.background_label == 0
        assert record.phases == ("background", "arrange the separated wire", "strip the insulation")
        assert record.action == RJ45 and record.confined_to == root.resolve()
    assert records["rj45-2"].path == root / RJ45_VIDEOS / "rj45-2.mkv"


def test_a_container_without_a_frame_count_is_counted_by_demuxing(root: Path) -> None:
    with av.open(str(root / RJ45_VIDEOS / "rj45-2.mkv")) as container:
        assert container.streams.video[0].frames == 0  # Matroska stores none
    assert load(root, tasks=RJ45)["rj45-2"].labels.shape == (20,)


def test_seeded_split_per_task_ignores_coins_subset(root: Path) -> None:
    # floor(0.6 * 4) = 2 train videos. numpy's default_rng(0).permutation(4) is [2, 0, 1, 3]: the sorted ids
    # become rj45-2, rj45-0, rj45-1, rj45-3 and the first two are train; with seed 1 it is [0, 1, 2, 3].
    splits = {video_id: r.split for video_id, r in load(root, tasks=RJ45).items()}
    assert splits == {"rj45-0": "train", "rj45-1": "val", "rj45-2": "train", "rj45-3": "val"}
    database = json.loads((root / "COIN.json").read_text())["database"]
    assert [database[v]["subset"] for v in splits] == ["testing", "training", "testing", "training"]  # unused
    assert {v: r.split for v, r in load(root, tasks=RJ45, seed="1").items()} == \
        {"rj45-0": "train", "rj45-1": "train", "rj45-2": "val", "rj45-3": "val"}
    # each task draws its own split: choosing other tasks besides does not change it
    assert {v: r.split for v, r in load(root).items() if v.startswith("rj45-")} == splits
    with pytest.raises(VavaError, match=r"^--dataset-option seed=x: not an integer$"):
        load(root, seed="x")
    with pytest.raises(VavaError, match=r"^--dataset-option seed=-1: must be >= 0$"):
        load(root, seed="-1")


@pytest.mark.parametrize(("count", "train"), [(1, 0), (2, 1), (3, 1), (5, 3), (10, 6), (11, 6)])
def test_draw_split_puts_floor_sixty_percent_in_train(count: int, train: int) -> None:
    # by hand for 3 videos: floor(0.6 * 3) = 1 train; default_rng(0).permutation(3) = [2, 0, 1] puts "c" first
    assert draw_split(["b", "c", "a"], seed=0) == {"c": "train", "a": "val", "b": "val"}
    ids = [f"v{i:02d}" for i in range(count)]
    split = draw_split(ids[::-1], seed=0)
    assert sorted(split) == ids and list(split.values()).count("train") == train
    assert draw_split(ids, seed=0) == split  # the ids are sorted first


def test_task_selection() -> None:
    by_task = {name: ["v"] * n for name, n in
               {"A": 3, "B": 5, "C": 5, "D": 1, "E": 2, "F": 4, "G": 4, "H": 1}.items()}
    where = Path("COIN.json")
    assert select_tasks(by_task, "largest", where) == ["B", "C", "F", "G", "A", "E"]  # ties by name
    assert select_tasks(by_task, " H, A ,H", where) == ["H", "A"]
    with pytest.raises(VavaError, match=r"^COIN.json: no video of task 'CleanHamsterCage' \(tasks=vava\)$"):
        select_tasks(by_task, "vava", where)
    with pytest.raises(VavaError, match=r"^--dataset-option tasks=' , ': name at least one task$"):
        select_tasks(by_task, " , ", where)


def test_an_unknown_task_suggests_the_closest_name(root: Path) -> None:
    with pytest.raises(VavaError, match=r"COIN.json: no video of task 'MakeRJ45Cabel' \(tasks=MakeRJ45Cabel\); "
                                        r"did you mean 'MakeRJ45Cable'\?$"):
        load(root, tasks="MakeRJ45Cabel")


def test_split_file_decides_split_and_membership(root: Path, tmp_path: Path) -> None:
    split_file = tmp_path / "split.json"
    split_file.write_text(json.dumps({"train": ["rj45-0", "disk-1", "__nba-0"], "val": ["rj45-1"]}))
    records = load(root, tasks=f"{RJ45},ReplaceHardDisk", split_file=str(split_file))
    assert {v: r.split for v, r in records.items()} == {"rj45-0": "train", "rj45-1": "val", "disk-1": "train"}
    split_file.write_text(json.dumps({"train": ["rj45-0", "no-such-video"]}))
    with pytest.raises(VavaError, match=r"split.json: video 'no-such-video' is not in .*COIN.json$"):
        load(root, split_file=str(split_file))


def test_write_split_round_trips_through_split_file(root: Path, tmp_path: Path) -> None:
    split_file = tmp_path / "split.json"
    args = ["data", "info", "--dataset", "coin", "--root", str(root), "--dataset-option", "seed=3"]
    result = CliRunner().invoke(main, [*args, "--write-split", str(split_file)])
    assert result.exit_code == 0, result.output
    written = json.loads(split_file.read_text())
    drawn = load(root, seed="3")
    assert written == {split: [v for v, r in drawn.items() if r.split == split] for split in ("train", "val", "test")}
    assert len(written["train"]) == len(written["val"]) == 12 and written["test"] == []
    reread = load(root, split_file=str(split_file))  # seed 0 here: the file alone decides
    assert {v: r.split for v, r in reread.items()} == {v: r.split for v, r in drawn.items()}
    again = CliRunner().invoke(main, [*args, "--write-split", str(split_file)])
    assert again.exit_code == 1 and f"Error: {split_file}: already exists" in again.output


def test_missing_videos_error_in_one_line_or_are_skipped(root: Path) -> None:
    edit_database(root, lambda db: db.update({"rj45-4": {**db["rj45-0"], "subset": "testing"}}))
    (root / "videos" / "1" / "disk-1.mp4").unlink()
    videos = re.escape(str(root / "videos"))
    with pytest.raises(VavaError, match=rf"^{videos}: 2 of 25 videos of the chosen tasks have no file "
                                        r"\(first: rj45-4\.\* or 0/rj45-4\.\*\); download them or pass "
                                        r"--dataset-option "
                                        r"missing=skip$"):
        load(root)
    records = load(root, missing="skip")
    assert len(records) == 23 and "rj45-4" not in records and "disk-1" not in records
    # the split is drawn over all 5 ids COIN.json lists, present or not: default_rng(0).permutation(5) is
    # [2, 4, 3, 0, 1], so floor(0.6 * 5) = 3 train: rj45-2, rj45-4 (no file), rj45-3
    assert {v: r.split for v, r in records.items() if v.startswith("rj45-")} == \
        {"rj45-0": "val", "rj45-1": "val", "rj45-2": "train", "rj45-3": "train"}


@pytest.mark.parametrize(("change", "message"), [
    (lambda db: db["rj45-1"]["annotation"][0].update(segment=[0.5]), "segment must be [start, end] (two numbers)"),
    (lambda db: db["rj45-1"]["annotation"][0].update(segment=[1.0, 0.5]), "segment [1.0, 0.5] is not a valid"),
    (lambda db: db["rj45-1"]["annotation"][0].update(id="step 1"), "step id must be an integer, got 'step 1'"),
    (lambda db: db["rj45-1"]["annotation"][0].update(label=None), "step label must be a string, got None"),
    (lambda db: db["rj45-1"].pop("class"), "class must be a task name, got None"),
])
def test_bad_annotations_name_the_file_and_video(root: Path, change, message: str) -> None:
    edit_database(root, change)
    with pytest.raises(VavaError, match=rf"^{re.escape(str(root / 'COIN.json'))}: video 'rj45-1': "
                                        rf"{re.escape(message)}"):
        load(root)


def test_a_symlinked_annotation_file_outside_the_root_is_refused(root: Path, tmp_path: Path) -> None:
    (root / "COIN.json").rename(tmp_path / "COIN.json")
    (root / "COIN.json").symlink_to(tmp_path / "COIN.json")
    with pytest.raises(VavaError) as caught:
        load(root)
    assert str(caught.value) == (f"{root / 'COIN.json'}: leads outside the dataset root {root.resolve()} "
                                 "(pass allow_outside_root if that is intended)")
    assert len(load_dataset("coin", root, allow_outside_root=True)) == 24


def test_video_file_errors(root: Path) -> None:
    (root / RJ45_VIDEOS / "rj45-0.webm").write_bytes(b"not a video")
    with pytest.raises(VavaError, match=r"video 'rj45-0': two files, rj45-0.mp4 and rj45-0.webm; keep one$"):
        load(root, tasks=RJ45)
    (root / RJ45_VIDEOS / "rj45-0.mp4").unlink()
    with pytest.raises(VavaError, match=r"video 'rj45-0': .*rj45-0.webm: cannot read the video \("):
        load(root, tasks=RJ45)
    with pytest.raises(VavaError, match=r"clips: the videos folder is missing \(set it with --dataset-option "
                                        r"videos=FOLDER\)$"):
        load(root, videos="clips")
    with pytest.raises(VavaError, match=r"^--dataset-option videos=\.\./x: .* leads outside the dataset root"):
        load(root, videos="../x")


def test_other_video_folder_and_extensions(root: Path) -> None:
    (root / "videos").rename(root / "clips")
    (root / "clips" / "0" / "rj45-0.mp4").rename(root / "clips" / "0" / "rj45-0.mov")
    records = load(root, videos="clips", tasks=RJ45)
    assert records["rj45-0"].path.name == "rj45-0.mov" and records["rj45-0"].labels.tolist() == RJ45_LABELS["rj45-0"]


def official_download(root: Path, flat: tuple[str, ...] = ()) -> None:
    """A COIN copy as COIN's `download_videos.py` leaves it: `COIN.json` (entries with `recipe_type`,
    `class`, `subset`, `start`, `end`, `video_url` and `annotation`, step ids as strings) and every video at
    `videos/<recipe_type>/<youtube id>.mp4` (the script makes `videos/` + str(recipe_type), then saves
    `<youtube id>.mp4`); the ids in `flat` are in `videos/` itself instead. Two real-looking YouTube ids of
    task 21, CleanHamsterCage, one starting with `__`."""
    entry = {"recipe_type": 21, "class": "CleanHamsterCage", "subset": "training", "start": 0.0, "end": 2.0,
             "annotation": [{"id": "3297", "segment": [0.5, 0.9], "label": "remove the hamster"}]}
    database = {video_id: {**entry, "video_url": f"https://www.youtube.com/embed/{video_id}"}
                for video_id in ("__9c5VYjqsw", "Ab-3_cD9xYz")}
    root.mkdir()
    (root / "COIN.json").write_text(json.dumps({"database": database}))
    frames = np.zeros((20, 8, 8, 3), dtype=np.uint8)
    for video_id in database:
        folder = root / "videos" / ("" if video_id in flat else "21")
        folder.mkdir(parents=True, exist_ok=True)
        write_video(folder / f"{video_id}.mp4", frames, 10.0)


@pytest.mark.parametrize(("flat", "found"), [
    ((), "2 as {videos}/<recipe_type>/<id>.<ext> (download_videos.py's layout)"),
    (("__9c5VYjqsw", "Ab-3_cD9xYz"), "2 as {videos}/<id>.<ext>"),
    (("Ab-3_cD9xYz",),
     "1 as {videos}/<recipe_type>/<id>.<ext> (download_videos.py's layout) and 1 as {videos}/<id>.<ext>"),
])
def test_the_official_download_layout_and_ids_starting_with_two_underscores(tmp_path: Path, flat: tuple[str, ...],
                                                                            found: str) -> None:
    root = tmp_path / "coin"
    official_download(root, flat)
    result = CliRunner().invoke(main, ["data", "info", "--dataset", "coin", "--root", str(root),
                                       "--dataset-option", "tasks=CleanHamsterCage"])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[-1] == f"note: coin: video files found: {found.format(videos=root / 'videos')}"
    records = load(root, tasks="CleanHamsterCage")
    assert sorted(records) == ["Ab-3_cD9xYz", "__9c5VYjqsw"]
    folder = root / "videos" / ("" if "__9c5VYjqsw" in flat else "21")
    assert records["__9c5VYjqsw"].path == folder / "__9c5VYjqsw.mp4"
    assert records["__9c5VYjqsw"].labels.tolist() == [0] * 5 + [1] * 5 + [0] * 10


def test_a_video_in_another_recipe_type_folder_is_not_found(tmp_path: Path) -> None:
    root = tmp_path / "coin"
    official_download(root)
    (root / "videos" / "21").rename(root / "videos" / "22")
    with pytest.raises(VavaError, match=r"videos: 2 of 2 videos of the chosen tasks have no file \(first: "
                                        r"Ab-3_cD9xYz\.\* or 21/Ab-3_cD9xYz\.\*\); download them"):
        load(root, tasks="CleanHamsterCage")


def test_ids_starting_with_two_underscores_are_extracted(root: Path, tmp_path: Path) -> None:
    records = load_dataset("coin", root, options={"tasks": "AttendNBASkillsChallenge"})
    assert [r.id for r in records] == ["__nba-0", "__nba-1", "__nba-2", "__nba-3"]
    summary = extract(records, tmp_path / "cache", ExtractOptions(weights="random", image_size=32, progress=False))
    assert summary.ok
    fs = FeatureSet.open(summary.path)
    assert [v.id for v in fs.videos()] == ["__nba-0", "__nba-1", "__nba-2", "__nba-3"]
    assert fs.labels("__nba-2").tolist() == [0] * 15 + [1] * 5


def test_extraction_caches_the_expected_labels(root: Path, tmp_path: Path) -> None:
    records = load_dataset("coin", root, options={"tasks": RJ45})
    summary = extract(records, tmp_path / "cache", ExtractOptions(weights="random", image_size=32, progress=False))
    assert summary.ok and summary.frames == 80
    fs = FeatureSet.open(summary.path)
    for record in records:
        assert fs.labels(record.id).tolist() == RJ45_LABELS[record.id]
        assert np.array_equal(fs.frame_index(record.id), np.arange(20))
    assert fs.video("rj45-2").phases == ("background", "arrange the separated wire", "strip the insulation")
