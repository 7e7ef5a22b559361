"""`vava data manifest` (pipeline/datasets/manifest.py) and `probe_video`: finding videos, probing them,
splits, segments -> labels, where the manifest may be written, and a CSV file given that is a FIFO."""
from __future__ import annotations

import json
import os
from pathlib import Path

import av
import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from tests.conftest import make_folder_dataset, moving_square
from tests.helpers import cli, fifo_at, refused, without_blocking
from vava.core.errors import VavaError
from vava.core.records import MAX_FRAMES, MAX_LABEL
from vava.core.videoio import probe_video, write_video
from vava.pipeline.cli import main
from vava.pipeline.datasets.folder import load_folder
from vava.pipeline.datasets.manifest import (
    FoundVideo,
    find_videos,
    read_segments,
    read_split_file,
    seeded_splits,
    write_video_manifest,
)

SIZE = 16


def video_file(path: Path, frames: int, fps: float = 10.0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    write_video(path, moving_square(frames, seed=frames, size=SIZE), fps)
    return path


def frame_folder(path: Path, frames: int) -> Path:
    path.mkdir(parents=True)
    for i in range(frames):
        Image.fromarray(np.full((SIZE, SIZE, 3), 10 * i, np.uint8)).save(path / f"{i:03d}.png")
    return path


def found(*ids: str, action: str = "a") -> list[FoundVideo]:
    return [FoundVideo(i, Path(f"{i}.mp4"), action) for i in ids]


# -- probe_video ------------------------------------------------------------------------------
def test_probe_reads_container_counts_and_counts_packets_without_them(tmp_path: Path) -> None:
    assert probe_video(video_file(tmp_path / "a.mp4", 13, fps=12.5)) == (13, 12.5)  # MP4 stores the count
    assert probe_video(video_file(tmp_path / "b.mkv", 11, fps=30.0)) == (11, 30.0)  # Matroska: packets counted
    assert probe_video(frame_folder(tmp_path / "frames", 4)) == (4, None)


def test_probe_refuses_what_is_not_a_video(tmp_path: Path) -> None:
    (tmp_path / "x.mp4").write_bytes(b"not a video at all")
    with pytest.raises(VavaError, match=rf"^{tmp_path / 'x.mp4'}: cannot read the video \("):
        probe_video(tmp_path / "x.mp4")
    with pytest.raises(VavaError, match=rf"^{tmp_path / 'gone.mp4'}: no such file$"):
        probe_video(tmp_path / "gone.mp4")
    os.mkfifo(tmp_path / "pipe.mp4")  # would block a reader
    with pytest.raises(VavaError, match=rf"^{tmp_path / 'pipe.mp4'}: not a regular file or a folder of frames$"):
        probe_video(tmp_path / "pipe.mp4")


def test_probe_refuses_a_header_that_states_more_frames_than_a_video_may_have(tmp_path: Path) -> None:
    """An AVI's stream header states the frame count; a crafted one would size the label arrays (gigabytes)."""
    path = tmp_path / "forged.avi"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mjpeg", rate=10)
        stream.width, stream.height, stream.pix_fmt = SIZE, SIZE, "yuvj420p"
        for frame in moving_square(2, seed=0, size=SIZE):
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())
    data = bytearray(path.read_bytes())
    length = data.index(b"strh") + 8 + 32  # AVISTREAMHEADER.dwLength, after type, handler, flags ... start
    data[length:length + 4] = (MAX_FRAMES + 1).to_bytes(4, "little")
    path.write_bytes(data)
    with pytest.raises(VavaError) as caught:
        probe_video(path)
    assert str(caught.value) == (f"{path}: the container states {MAX_FRAMES + 1} frames, more than the {MAX_FRAMES} "
                                 "a video may have (a damaged or crafted header)")


# -- finding videos ---------------------------------------------------------------------------
def test_videos_take_their_action_from_the_subfolder_else_the_option_or_folder_name(tmp_path: Path) -> None:
    root = tmp_path / "kitchen"
    video_file(root / "pour" / "p10.mp4", 3)
    video_file(root / "pour" / "p2.MOV", 3)
    frame_folder(root / "pour" / "p3", 2)
    video_file(root / "loose.mkv", 3)
    (root / "notes.txt").write_text("not a video")
    (root / "empty").mkdir()
    video_file(root / ".hidden.mp4", 3)
    got = [(v.id, v.action, v.path.relative_to(root).as_posix()) for v in find_videos(root)]
    assert got == [("loose", "kitchen", "loose.mkv"), ("p2", "pour", "pour/p2.MOV"), ("p3", "pour", "pour/p3"),
                   ("p10", "pour", "pour/p10.mp4")]
    assert [v.action for v in find_videos(root, action="cook")] == ["cook", "pour", "pour", "pour"]


def test_finding_refuses_duplicate_ids_and_empty_folders(tmp_path: Path) -> None:
    video_file(tmp_path / "a" / "v1.mp4", 3)
    video_file(tmp_path / "b" / "v1.mp4", 3)
    with pytest.raises(VavaError, match=rf"^{tmp_path / 'b' / 'v1.mp4'}: video id 'v1' is also the id of "
                                        rf"{tmp_path / 'a' / 'v1.mp4'} \(ids are file names"):
        find_videos(tmp_path)
    (tmp_path / "none").mkdir()
    with pytest.raises(VavaError, match=r"none: no videos found \(files ending in \.mp4"):
        find_videos(tmp_path / "none")


# -- splits -------------------------------------------------------------------------------------
def test_split_file_in_both_forms(tmp_path: Path) -> None:
    lines = tmp_path / "splits.txt"
    lines.write_text("# mine\nv1 train\n\nv2   val\nv3\ttest\n")
    assert read_split_file(lines, found("v1", "v2", "v3")) == {"v1": "train", "v2": "val", "v3": "test"}
    table = tmp_path / "splits.csv"
    table.write_text("video,split\nv1, val\nv2,train\n")
    assert read_split_file(table, found("v1", "v2")) == {"v1": "val", "v2": "train"}


@pytest.mark.parametrize(("text", "message"), [
    ("v1 train\nv2 train extra\n", "splits.txt:2: expected 'video_id split' (or 'video,split'), got 3 field(s)"),
    ("v1 train\nv2 dev\n", "splits.txt:2: unknown split 'dev' (use one of train, val, test)"),
    ("v1 train\nv9 val\n", "splits.txt:2: video 'v9' is not among the videos found"),
    ("v1 train\nv1 val\n", "splits.txt:2: video 'v1' is listed twice"),
    ("v1 train\n", "splits.txt: no split for video(s) v2, v3"),
])
def test_split_file_errors_name_the_line(tmp_path: Path, text: str, message: str) -> None:
    (tmp_path / "splits.txt").write_text(text)
    with pytest.raises(VavaError) as error:
        read_split_file(tmp_path / "splits.txt", found("v1", "v2", "v3"))
    assert str(error.value) == f"{tmp_path}/{message}"


def test_seeded_splits_per_action_deterministic_and_never_without_train() -> None:
    videos = found(*(f"a{i}" for i in range(10))) + found("b0", action="b") + found("c0", "c1", "c2", action="c")
    splits = seeded_splits(videos, 0.3, seed=1)
    assert splits == seeded_splits(list(reversed(videos)), 0.3, seed=1)  # order of discovery does not matter
    val = {action: sorted(v for v in splits if v[0] == action and splits[v] == "val") for action in "abc"}
    assert [len(val[a]) for a in "abc"] == [3, 0, 1]  # round(3.0), the lone b0 stays in train, round(0.9)
    assert seeded_splits(videos[:10], 0.3, seed=1) == {k: v for k, v in splits.items() if k[0] == "a"}
    assert sum(s == "val" for s in seeded_splits(found("c0", "c1", "c2"), 0.9, seed=0).values()) == 2
    draws = {tuple(sorted(k for k, v in seeded_splits(videos, 0.3, seed=s).items() if v == "val")) for s in range(5)}
    assert len(draws) > 1
    with pytest.raises(VavaError, match=r"--val-fraction: 1.0 is not in \[0, 1\)"):
        seeded_splits(videos, 1.0, seed=0)


# -- segments -----------------------------------------------------------------------------------
def test_segments_become_labels_with_background_between(tmp_path: Path) -> None:
    video_file(tmp_path / "pour0.mp4", 20, fps=10.0)
    video_file(tmp_path / "pour1.mp4", 12, fps=10.0)
    video_file(tmp_path / "pour2.mp4", 5, fps=10.0)
    (tmp_path / "segments.csv").write_text(
        "video,start,end,phase\npour0,0.2,0.5,reach\npour0,1.0,1.9,tilt\npour1,0,0.1,tilt\npour1,0.2,0.25,background\n"
        "pour1,0.3,0.3,tilt\n")
    entries = write_video_manifest(tmp_path, tmp_path / "manifest.jsonl", segments_file=tmp_path / "segments.csv",
                                   val_fraction=0.0)
    by_id = {e["id"]: e for e in entries}
    # 10 fps: [0.2, 0.5] s -> frames 2..5, [1.0, 1.9] s -> 10..19; [0, 0.1] s -> 0..1, the background
    # row [0.2, 0.25] s -> frame 2, [0.3, 0.3] s -> frame 3
    assert by_id["pour0"]["labels"] == [0, 0, 1, 1, 1, 1, 0, 0, 0, 0] + [2] * 10
    assert by_id["pour1"]["labels"] == [2, 2, 0, 2] + [0] * 8
    assert by_id["pour0"]["phases"] == by_id["pour1"]["phases"] == ["background", "reach", "tilt"]
    assert by_id["pour0"]["background_label"] == 0 and by_id["pour0"]["fps"] == 10.0
    assert by_id["pour2"] == {"id": "pour2", "path": "pour2.mp4", "split": "train", "action": tmp_path.name,
                              "fps": 10.0}  # no segment row: unlabelled
    records = {r.id: r for r in load_folder(tmp_path)}
    assert records["pour0"].labels.tolist() == by_id["pour0"]["labels"] and records["pour2"].labels is None


@pytest.mark.parametrize(("text", "message"), [
    ("video,begin,end,phase\n", "segments.csv:1: the header must be video,start,end,phase, got video,begin,end,phase"),
    ("", "segments.csv:1: the header must be video,start,end,phase, got nothing"),
    ("video,start,end,phase\nv1,0,1\n", "segments.csv:2: expected 4 fields (video,start,end,phase), got 3"),
    ("video,start,end,phase\nv1,0,1,a\nv1,x,1,a\n", "segments.csv:3: start 'x' is not a number of seconds"),
    ("video,start,end,phase\nv1,0,nan,a\n", "segments.csv:2: end 'nan' must be a finite number of seconds >= 0"),
    ("video,start,end,phase\nv1,2,1,a\n", "segments.csv:2: end 1 is before start 2"),
    ("video,start,end,phase\nv1,0,1,\n", "segments.csv:2: the phase name is empty"),
    ("video,start,end,phase\n\nv7,0,1,a\n", "segments.csv:3: video 'v7' is not among the videos found"),
    # phases p1..p9999 and background fill the folder format's 10000; p10000 (line 10001) is one too many
    ("video,start,end,phase\n" + "".join(f"v1,0,1,p{i}\n" for i in range(1, MAX_LABEL + 2)),
     (f"segments.csv:{MAX_LABEL + 2}: phase 'p{MAX_LABEL + 1}' would be phase {MAX_LABEL + 1}; a manifest holds at "
      f"most {MAX_LABEL + 1} phases, background included")),
])
def test_bad_segment_rows_name_file_and_line(tmp_path: Path, text: str, message: str) -> None:
    (tmp_path / "segments.csv").write_text(text)
    with pytest.raises(VavaError) as error:
        read_segments(tmp_path / "segments.csv", found("v1"))
    assert str(error.value) == f"{tmp_path}/{message}"


@pytest.mark.parametrize(("rows", "message"), [
    ("v1,0,0.6,a\nv1,1.0,1.2,b\nv1,0.5,0.8,b\n", "segments.csv:4: segment 0.5-0.8 s of video 'v1' overlaps the one on "
                                                 "line 2 (0-0.6 s)"),
    ("v1,0,0.5,a\nv1,0.5,2.2,b\n", "segments.csv:3: segment 0.5-2.2 s of video 'v1' runs past its end (20 frames at "
                                   "10 fps: 2 s)"),
    ("v1,0,0.5,a\nv1,4,5,b\n", "segments.csv:3: segment 4-5 s of video 'v1' runs past its end (20 frames at 10 fps: "
                               "2 s)"),
    ("v1,0,0.5,a\x1b[2J\n", "segments.csv:2: the phase name 'a\\x1b[2J' contains a control character"),
])
def test_overlapping_or_overlong_segments_and_control_characters_are_refused(tmp_path: Path, rows: str,
                                                                               message: str) -> None:
    video_file(tmp_path / "v1.mp4", 20, fps=10.0)
    (tmp_path / "segments.csv").write_text("video,start,end,phase\n" + rows)
    with pytest.raises(VavaError) as error:
        write_video_manifest(tmp_path, tmp_path / "manifest.jsonl", segments_file=tmp_path / "segments.csv")
    assert str(error.value) == f"{tmp_path}/{message}"
    assert not (tmp_path / "manifest.jsonl").exists()
    # touching segments, and an end up to a frame past the video's are fine
    (tmp_path / "segments.csv").write_text("video,start,end,phase\nv1,0,0.5,a\nv1,0.5,2.1,b\n")
    write_video_manifest(tmp_path, tmp_path / "manifest.jsonl", segments_file=tmp_path / "segments.csv")


def test_segments_of_a_frame_folder_are_refused(tmp_path: Path) -> None:
    frame_folder(tmp_path / "f1", 3)
    (tmp_path / "segments.csv").write_text("video,start,end,phase\nf1,0,1,a\n")
    with pytest.raises(VavaError, match=r"segments.csv:2: video 'f1' is a frame folder, whose frame rate is unknown"):
        write_video_manifest(tmp_path, tmp_path / "manifest.jsonl", segments_file=tmp_path / "segments.csv")


# -- writing --------------------------------------------------------------------------------------
def test_paths_are_relative_to_the_manifest_folder_and_videos_outside_it_refused(tmp_path: Path) -> None:
    video_file(tmp_path / "data" / "videos" / "v1.mp4", 4)
    entries = write_video_manifest(tmp_path / "data" / "videos", tmp_path / "data" / "manifest.jsonl", action="x")
    assert entries == [{"id": "v1", "path": "videos/v1.mp4", "split": "train", "action": "x", "fps": 10.0}]
    (tmp_path / "elsewhere").mkdir()
    with pytest.raises(VavaError) as error:
        write_video_manifest(tmp_path / "data" / "videos", tmp_path / "elsewhere" / "manifest.jsonl")
    assert str(error.value) == (f"{tmp_path / 'data' / 'videos' / 'v1.mp4'} is outside {tmp_path / 'elsewhere'}, "
                                "the manifest's folder (video paths are relative to it); write the manifest into "
                                f"the video folder: --out {tmp_path / 'data' / 'videos' / 'manifest.jsonl'}")
    with pytest.raises(VavaError, match="must be named manifest.jsonl"):
        write_video_manifest(tmp_path / "data", tmp_path / "data" / "list.jsonl")


def test_existing_manifest_needs_force_and_a_symlink_is_replaced_not_followed(tmp_path: Path) -> None:
    video_file(tmp_path / "v1.mp4", 4)
    target = tmp_path.parent / f"{tmp_path.name}-target.txt"
    target.write_text("keep me")
    (tmp_path / "manifest.jsonl").symlink_to(target)
    with pytest.raises(VavaError, match=r"manifest.jsonl exists; pass --force to replace it"):
        write_video_manifest(tmp_path, tmp_path / "manifest.jsonl")
    write_video_manifest(tmp_path, tmp_path / "manifest.jsonl", force=True)
    assert target.read_text() == "keep me" and not (tmp_path / "manifest.jsonl").is_symlink()
    assert [r.id for r in load_folder(tmp_path)] == ["v1"]


def test_cli_writes_the_manifest_and_prints_its_folder(tmp_path: Path) -> None:
    for i in range(3):
        video_file(tmp_path / "vids" / "wave" / f"w{i}.mp4", 4)
    (tmp_path / "split.csv").write_text("video,split\nw0,train\nw1,val\nw2,test\n")
    out = tmp_path / "vids" / "manifest.jsonl"
    result = CliRunner().invoke(main, ["data", "manifest", str(tmp_path / "vids"), "--out", str(out),
                                       "--split-by", str(tmp_path / "split.csv")])
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[-1] == str(tmp_path / "vids")
    assert "3 videos of 1 action(s) (1 train, 1 val, 1 test), 0 labelled, 3 unlabelled" in result.stderr
    assert [json.loads(line)["split"] for line in out.read_text().splitlines()] == ["train", "val", "test"]
    both = CliRunner().invoke(main, ["data", "manifest", str(tmp_path / "vids"), "--out", str(out), "--force",
                                     "--split-by", str(tmp_path / "split.csv"), "--seed", "3"])
    assert both.exit_code == 2 and "give either --split-by or --val-fraction/--seed, not both" in both.output
    again = CliRunner().invoke(main, ["data", "manifest", str(tmp_path / "vids"), "--out", str(out)])
    assert again.exit_code == 1 and again.output == f"Error: --out: {out} exists; pass --force to replace it\n"


def test_cli_warns_about_actions_with_fewer_than_two_val_videos(tmp_path: Path) -> None:
    for action, count in (("pour", 5), ("stir", 10), ("wipe", 1)):
        for i in range(count):
            video_file(tmp_path / "vids" / action / f"{action}{i}.mp4", 2)
    result = CliRunner().invoke(main, ["data", "manifest", str(tmp_path / "vids"), "--out",
                                       str(tmp_path / "vids" / "manifest.jsonl"), "--val-fraction", "0.2"])
    assert result.exit_code == 0, result.output
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert warnings == [  # pour: round(0.2 x 5) = 1 val video; stir: 2; wipe: its one video stays in train
        "warning: action 'pour' has 1 val video: Kendall's tau and AP@K compare val videos of one action, so "
        "`vava evaluate` will skip them for it (it needs 2: raise --val-fraction or add videos)",
        "warning: action 'wipe' has 0 val videos: Kendall's tau and AP@K compare val videos of one action, so "
        "`vava evaluate` will skip them for it (it needs 2: raise --val-fraction or add videos)"]


# -- a CSV file given to data manifest that is a FIFO ----------------------------------------------


@pytest.mark.parametrize("option", ["--segments", "--split-by"])
def test_a_csv_file_of_data_manifest_that_is_a_fifo_is_refused(tmp_path: Path, option: str) -> None:
    make_folder_dataset(tmp_path / "data", [8, 9])
    fifo = fifo_at(tmp_path / "given.csv")
    out = tmp_path / "data" / "videos" / "manifest.jsonl"
    result = without_blocking(lambda: cli("data", "manifest", out.parent, "--out", out, option, fifo), fifo)
    refused(result, fifo)
    assert not out.exists()
