"""IKEA ASM adapter on the tiny copy in the real layout: labels, keep masks and phases by hand, options, errors,
and extraction of both background modes."""
from __future__ import annotations

import functools
import json
import re
from pathlib import Path

import pytest

from tests.pipeline.datasets.helpers import records_by_id
from vava.cache.store import FeatureSet
from vava.core.errors import VavaError
from vava.pipeline.datasets import load_dataset
from vava.pipeline.datasets.ikea_asm import FIXTURE_LABELS, exported_segments, write_fixture
from vava.stages.extract.run import ExtractOptions, extract

# Segments [first, last] in frame numbers, both included, as the official exporter writes them:
KALLAX_1 = "Kallax_Shelf_Drawer/0001_black_table_02_01_2019_08_16_14_00"  # train: [1,2] pick up shelf, [3,5] NA
KALLAX_2 = "Kallax_Shelf_Drawer/0002_white_floor_05_02_2019_08_19_17_32"  # test: [0,1] slide drawer in, [3,5] shelf
LACK = "Lack_Side_Table/0003_oak_floor_01_01_2019_08_14_17_56"  # train: [0,1] NA, [2,4] pick up leg
KALLAX_4 = "Kallax_Shelf_Drawer/0004_oak_table_10_04_2019_08_26_16_18"  # train: [0,2] shelf, [4,5] slide drawer in
# The action list file is unsorted; the official ids are NA 0, then the sorted names: flip shelf 1, insert
# drawer pin 2, pick up leg 3, pick up shelf 4, slide drawer in 5 (phases follow this order, not the file's).


def record_id(key: str) -> str:
    return key.replace("/", "__")


@pytest.fixture
def root(tmp_path: Path) -> Path:
    write_fixture(tmp_path / "ikea")
    return tmp_path / "ikea"


load = functools.partial(records_by_id, "ikea_asm")


def test_background_kept_as_phase_zero_over_the_kallax_subset(root: Path) -> None:
    records = load(root)
    assert list(records) == [record_id(KALLAX_1), record_id(KALLAX_4), record_id(KALLAX_2)]  # train, then test
    first, fourth, second = records.values()
    # frames 0, 3, 4, 5 of the first scan are NA; the second scan's [3, 5] ends at its last frame
    assert first.labels.tolist() == [0, 1, 1, 0, 0, 0] and second.labels.tolist() == [2, 2, 0, 1, 1, 1]
    assert fourth.labels.tolist() == [1, 1, 1, 0, 2, 2]
    assert first.phases == second.phases == ("NA", "pick up shelf", "slide drawer in")
    assert (first.split, fourth.split, second.split) == ("train", "train", "val")  # official test -> val
    assert first.keep is None and first.background_label == 0 and first.fps == 25.0
    assert first.action == "Kallax_Shelf_Drawer" and first.num_frames == 6
    assert first.path == root / KALLAX_1 / "dev3" / "images" and first.confined_to == root.resolve()


def test_background_dropped_before_embedding_and_actions_remapped(root: Path) -> None:
    first, fourth, second = load(root, background="drop").values()
    assert first.phases == ("pick up shelf", "slide drawer in") and first.background_label is None
    assert first.keep.tolist() == [False, True, True, False, False, False]
    assert second.keep.tolist() == [True, True, False, True, True, True]
    # one label per decoded frame; dropped frames are unknown (-1) and never reach the cache
    assert first.labels.tolist() == [-1, 0, 0, -1, -1, -1] and second.labels.tolist() == [1, 1, -1, 0, 0, 0]
    assert fourth.labels.tolist() == [0, 0, 0, -1, 1, 1] and fourth.keep.tolist() == [True] * 3 + [False] + [True] * 2
    assert (first.num_frames, fourth.num_frames, second.num_frames) == (2, 5, 5)


def test_all_furniture_shares_one_phase_list_in_official_order(root: Path) -> None:
    records = load(root, furniture="all")
    assert list(records) == [record_id(KALLAX_1), record_id(LACK), record_id(KALLAX_4), record_id(KALLAX_2)]
    lack = records[record_id(LACK)]
    assert lack.phases == ("NA", "pick up leg", "pick up shelf", "slide drawer in")
    assert lack.labels.tolist() == [0, 0, 1, 1, 1, 0] and lack.action == "Lack_Side_Table"
    assert records[record_id(KALLAX_1)].labels.tolist() == [0, 2, 2, 0, 0, 0]
    assert list(load(root, furniture="Lack_Side_Table")) == [record_id(LACK)]
    with pytest.raises(VavaError, match=r"indexing_files: no video of furniture 'Stool' in train_cross_env.txt or "
                                        r"test_cross_env.txt$"):
        load(root, furniture="Stool")


def test_view_option_picks_the_camera_folder(tmp_path: Path) -> None:
    write_fixture(tmp_path / "ikea", frames=4, views=("dev1",))
    first, _, second = load(tmp_path / "ikea", view="dev1").values()
    assert first.path.parts[-2:] == ("dev1", "images")
    # the exporter writes no segment for the second scan's single "pick up shelf" frame (3): it reads as NA
    assert first.labels.tolist() == [0, 1, 1, 0] and second.labels.tolist() == [2, 2, 0, 0]
    folder = tmp_path / "ikea" / KALLAX_1 / "dev3" / "images"
    with pytest.raises(VavaError, match=rf"^video '{KALLAX_1}': frame folder {re.escape(str(folder))} is missing "
                                        r"\(view 'dev3'\)$"):
        load(tmp_path / "ikea")
    with pytest.raises(VavaError, match=r"^--dataset-option view: '../dev1' must be a plain name"):
        load(tmp_path / "ikea", view="../dev1")


def edit_annotations(root: Path, key: str, annotation: list) -> None:
    path = root / "gt_segments.json"
    document = json.loads(path.read_text())
    document["database"][key]["annotation"] = annotation
    path.write_text(json.dumps(document))


@pytest.mark.parametrize(("annotation", "message"), [
    ([{"segment": [1, 2], "label": "sand the shelf"}],
     "unknown action 'sand the shelf' (not in indexing_files/atomic_action_list.txt)"),
    ([{"segment": [1], "label": "pick up shelf"}], "segment must be [start, end] (two numbers), got [1]"),
    ([{"segment": [3, 1], "label": "pick up shelf"}],
     "segment [3, 1] is not a frame range [first, last] (whole frame numbers, last >= first)"),
    ([{"segment": [1, 2.5], "label": "pick up shelf"}], "segment [1, 2.5] is not a frame range [first, last]"),
    ("pick up shelf", "annotation must be a list of objects"),
])
def test_bad_annotations_name_the_file_and_video(root: Path, annotation: object, message: str) -> None:
    edit_annotations(root, KALLAX_2, annotation)
    with pytest.raises(VavaError, match=rf"^{re.escape(str(root / 'gt_segments.json'))}: video '{KALLAX_2}': "
                                        rf"{re.escape(message)}"):
        load(root)


def test_official_ids_put_na_first_and_sort_the_rest_wherever_na_is_listed(root: Path) -> None:
    action_list = root / "indexing_files" / "atomic_action_list.txt"
    expected = {r.id: r.labels.tolist() for r in load_dataset("ikea_asm", root, options={"furniture": "all"})}
    # NA listed in the middle, an action no video shows added: the same phases and labels
    action_list.write_text("zip bag\nslide drawer in\nNA\npick up shelf\npick up leg\n")
    records = load(root, furniture="all")
    assert {v: r.labels.tolist() for v, r in records.items()} == expected
    assert records[record_id(LACK)].phases == ("NA", "pick up leg", "pick up shelf", "slide drawer in")


def test_segments_read_as_the_official_exporter_writes_them(root: Path) -> None:
    """`gt_segments.json` as IKEA ASM's `toolbox/export_action_gt_db_to_json.py` writes it (through
    `action/utils.py`, `convert_db_to_segment_json`): "VERSION 1.3", the test videos first, one segment per
    run of two or more equal per-frame labels, `[first, last]` with the last frame included, NA runs written
    as `NA` segments, a run that ends the video ending at nframes - 1, single-frame runs not written."""
    exported = {
        # per-frame official ids 5 5 5 0 4 4 (slide drawer in x3, NA, pick up shelf x2); the lone NA is not written
        KALLAX_2: ("testing", [{"label": "slide drawer in", "segment": [0, 2]},
                               {"label": "pick up shelf", "segment": [4, 5]}]),
        # 0 0 4 4 4 0: the exporter's own example; the last frame (a lone NA) is not written
        KALLAX_1: ("training", [{"label": "NA", "segment": [0, 1]}, {"label": "pick up shelf", "segment": [2, 4]}]),
        LACK: ("training", [{"label": "NA", "segment": [0, 5]}]),
        # 4 4 0 0 5 5
        KALLAX_4: ("training", [{"label": "pick up shelf", "segment": [0, 1]}, {"label": "NA", "segment": [2, 3]},
                                {"label": "slide drawer in", "segment": [4, 5]}]),
    }
    document = {"version": "VERSION 1.3",
                "database": {key: {"subset": subset, "annotation": annotation}
                             for key, (subset, annotation) in exported.items()}}
    (root / "gt_segments.json").write_text(json.dumps(document))
    kept = load(root)  # phases: NA 0, pick up shelf 1, slide drawer in 2
    assert [r.labels.tolist() for r in kept.values()] == [[0, 0, 1, 1, 1, 0], [1, 1, 0, 0, 2, 2], [2, 2, 2, 0, 1, 1]]
    dropped = load(root, background="drop")
    # every action frame survives: 3 + 4 + 5 of the 18 frames
    assert [r.num_frames for r in dropped.values()] == [3, 4, 5]
    assert dropped[record_id(KALLAX_2)].labels.tolist() == [1, 1, 1, -1, 0, 0]


def test_the_fixture_writes_segments_as_the_exporter_does(root: Path) -> None:
    assert exported_segments(("NA", "NA", "x", "x", "x", "NA")) == [{"label": "NA", "segment": [0, 1]},
                                                                     {"label": "x", "segment": [2, 4]}]
    document = json.loads((root / "gt_segments.json").read_text())
    assert document["version"] == "VERSION 1.3" and list(document["database"]) == [KALLAX_2, KALLAX_1, LACK, KALLAX_4]
    assert document["database"][KALLAX_1] == {"subset": "training", "annotation": [
        {"label": "pick up shelf", "segment": [1, 2]}, {"label": "NA", "segment": [3, 5]}]}
    # read back, every scan has exactly the per-frame labels the fixture was derived from
    for record in load(root, furniture="all").values():
        assert tuple(record.phases[i] for i in record.labels) == FIXTURE_LABELS[record.id.replace("__", "/", 1)]


def test_a_segment_covers_its_first_and_last_frames_and_later_segments_win(root: Path) -> None:
    edit_annotations(root, KALLAX_1, [{"segment": [0, 1], "label": "slide drawer in"},
                                      {"segment": [3, 3], "label": "pick up leg"},
                                      {"segment": [4, 5], "label": "pick up shelf"},
                                      {"segment": [5, 5], "label": "NA"}])
    first = load(root, furniture="all")[record_id(KALLAX_1)]
    assert first.labels.tolist() == [3, 3, 0, 1, 2, 0]  # NA, pick up leg, pick up shelf, slide drawer in


def test_a_video_without_actions_cannot_be_dropped_to_nothing(root: Path) -> None:
    edit_annotations(root, KALLAX_1, [])
    assert load(root)[record_id(KALLAX_1)].labels.tolist() == [0] * 6
    with pytest.raises(VavaError, match=rf"video '{KALLAX_1}': no frame lies in an action segment "
                                        r"\(background=drop would leave nothing\)$"):
        load(root, background="drop")


def test_index_file_errors(root: Path) -> None:
    index = root / "indexing_files"
    document = json.loads((root / "gt_segments.json").read_text())
    del document["database"][KALLAX_2]
    (root / "gt_segments.json").write_text(json.dumps(document))
    with pytest.raises(VavaError, match=rf"gt_segments.json: video '{KALLAX_2}': not annotated \(listed in "):
        load(root)
    (index / "test_cross_env.txt").write_text(f"{KALLAX_1}\n")
    with pytest.raises(VavaError, match=rf"test_cross_env.txt: video '{KALLAX_1}' is listed twice \(also in the "
                                        r"train split\)$"):
        load(root)
    (index / "test_cross_env.txt").write_text("../../etc/passwd\n")
    with pytest.raises(VavaError, match=r"test_cross_env.txt: '../../etc/passwd' is not <Furniture>/<scan>$"):
        load(root)
    (index / "atomic_action_list.txt").write_text("pick up leg\nNA\npick up leg\n")
    with pytest.raises(VavaError, match=r"atomic_action_list.txt: action 'pick up leg' is listed twice$"):
        load(root)
    (index / "atomic_action_list.txt").write_text("NA\n\n")
    with pytest.raises(VavaError, match=r"atomic_action_list.txt: no actions listed$"):
        load(root)
    (index / "atomic_action_list.txt").unlink()
    with pytest.raises(VavaError, match=r"atomic_action_list.txt: missing \(the IKEA ASM action list\)$"):
        load(root)


def test_a_symlinked_frame_folder_outside_the_root_is_refused(root: Path, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    (root / KALLAX_1 / "dev3" / "images").rename(elsewhere)
    (root / KALLAX_1 / "dev3" / "images").symlink_to(elsewhere, target_is_directory=True)
    with pytest.raises(VavaError, match=rf"^video '{KALLAX_1}': .* leads outside the dataset root"):
        load(root)
    records = load_dataset("ikea_asm", root, allow_outside_root=True)
    assert records[0].confined_to is None and records[0].labels.tolist() == [0, 1, 1, 0, 0, 0]


@pytest.mark.parametrize("name", ["gt_segments.json", "indexing_files/atomic_action_list.txt",
                                  "indexing_files/train_cross_env.txt", "indexing_files/test_cross_env.txt"])
def test_a_symlinked_annotation_file_outside_the_root_is_refused(root: Path, tmp_path: Path, name: str) -> None:
    (root / name).rename(tmp_path / "elsewhere")
    (root / name).symlink_to(tmp_path / "elsewhere")
    with pytest.raises(VavaError) as caught:
        load(root)
    assert str(caught.value) == (f"{root / name}: leads outside the dataset root {root.resolve()} "
                                 "(pass allow_outside_root if that is intended)")
    assert len(load_dataset("ikea_asm", root, allow_outside_root=True)) == 3


@pytest.mark.parametrize("background", ["keep", "drop"])
def test_extraction_caches_the_expected_labels(root: Path, tmp_path: Path, background: str) -> None:
    records = load_dataset("ikea_asm", root, options={"background": background})
    summary = extract(records, tmp_path / "cache", ExtractOptions(weights="random", image_size=32, progress=False))
    assert summary.ok and summary.frames == (18 if background == "keep" else 12)
    fs = FeatureSet.open(summary.path)
    expected = {"keep": ([0, 1, 1, 0, 0, 0], [1, 1, 1, 0, 2, 2], [2, 2, 0, 1, 1, 1]),
                "drop": ([0, 0], [0, 0, 0, 1, 1], [1, 1, 0, 0, 0])}[background]
    frames = {"keep": (range(6),) * 3, "drop": ([1, 2], [0, 1, 2, 4, 5], [0, 1, 3, 4, 5])}[background]
    for record, labels, indices in zip(records, expected, frames, strict=True):
        assert fs.labels(record.id).tolist() == labels
        assert fs.frame_index(record.id).tolist() == list(indices)
        assert fs.read(record.id).shape == (len(labels), 1024, 2, 2)
