"""Untrusted input: manifest fields and paths, video ids, CLI numbers, FIFOs, sizes, and what
`extract` and `data synth` may read, write and delete."""
from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.conftest import make_folder_dataset
from vava.cache.store import FeatureSet
from vava.core.errors import VavaError
from vava.core.records import MAX_FRAMES
from vava.pipeline.cli import main
from vava.pipeline.datasets import load_dataset
from vava.pipeline.datasets.folder import load_folder, write_manifest
from vava.pipeline.datasets.synthetic import CLEAN, SynthConfig, synthesize
from vava.stages.extract.run import ExtractOptions

FAST = ExtractOptions(weights="random", image_size=64, batch_size=7, workers=1, progress=False)
EXTRACT = ["extract", "--weights", "random", "--image-size", "64", "--quiet"]
GOOD = {"id": "a", "path": "videos/a.mp4", "split": "train", "action": "pour", "labels": [0, 0, 1, 2],
        "phases": ["start", "pour", "end"], "fps": 30, "background_label": 2}


def run_cli(*args: str):
    return CliRunner().invoke(main, list(args))


def write_entry(root: Path, **change: object) -> None:
    root.mkdir(parents=True, exist_ok=True)
    (root / "manifest.jsonl").write_text(json.dumps({**GOOD, **change}) + "\n")


def tiny_synth(**overrides: object) -> SynthConfig:
    return SynthConfig(**{"actions": 2, "videos": 2, "size": 32, "frames": (16, 18), "variations": CLEAN, **overrides})


# -- 3: manifest paths stay inside the dataset root ------------------------------------------------


@pytest.mark.parametrize("kind", ["absolute", "dotdot", "symlink"])
def test_manifest_paths_leaving_the_root_are_refused_unless_allowed(tmp_path: Path, kind: str) -> None:
    outside = tmp_path / "outside.mp4"
    outside.write_bytes(b"secret")
    root = tmp_path / "data"
    root.mkdir()
    (root / "link.mp4").symlink_to(outside)
    path = {"absolute": str(outside), "dotdot": "../outside.mp4", "symlink": "link.mp4"}[kind]
    write_entry(root, path=path)
    with pytest.raises(VavaError, match=rf"manifest.jsonl:1: video 'a': path '{path}' leads outside the dataset "
                                        r"root .* \(pass allow_outside_root if that is intended\)$"):
        load_dataset("folder", root)
    [record] = load_dataset("folder", root, allow_outside_root=True)
    assert record.path == outside.resolve() and record.confined_to is None


def test_extract_cli_refuses_outside_paths_until_allowed(tmp_path: Path) -> None:
    root = tmp_path / "data"
    root.mkdir()
    entries = make_folder_dataset(tmp_path / "elsewhere", [8])
    write_manifest(root, [{**entries[0], "path": "../elsewhere/videos/v0.mp4"}])
    cache = tmp_path / "cache"
    refused = run_cli(*EXTRACT, "--root", str(root), "--cache", str(cache))
    assert refused.exit_code == 1 and "leads outside the dataset root" in refused.output
    assert "Traceback" not in refused.output and not cache.exists()
    allowed = run_cli(*EXTRACT, "--root", str(root), "--cache", str(cache), "--allow-outside-root")
    assert allowed.exit_code == 0, allowed.output
    assert "1 videos: 1 extracted (8 frames" in allowed.stderr
    # align finds a cached video's frames where its (allowed) extraction read them
    feature_set = FeatureSet.open(allowed.stdout.strip().splitlines()[-1])
    assert feature_set.video("v0").source_path == str((tmp_path / "elsewhere" / "videos" / "v0.mp4").resolve())


# -- 4: worker errors, video ids and the final accounting -----------------------------------------


@pytest.mark.parametrize(
    ("video_id", "message"),
    [(None, r"video id must be a string, got NoneType None"),
     (7, r"video id must be a string, got int 7"),
     ("a\u0000b", r"video id: 'a\\x00b' contains a control character"),
     ("a\nb", r"video id: 'a\\nb' contains a control character"),
     ("x" * 300, r"video id 'x{40}'\.\.\. is 300 bytes long \(at most 250: it names a folder and a lock file"),
     ("zarr.json", r"video id: 'zarr.json' is a reserved name")],
)
def test_video_ids_are_checked_when_the_manifest_is_read(tmp_path: Path, video_id: object, message: str) -> None:
    write_entry(tmp_path, id=video_id)
    with pytest.raises(VavaError, match=r"manifest.jsonl:1: " + message):
        load_folder(tmp_path)


# -- 15: every manifest field is type- and range-checked -------------------------------------------


@pytest.mark.parametrize(
    ("change", "message"),
    [({"action": None}, r"video 'a': action must be a non-empty string, got None"),
     ({"action": 3}, r"video 'a': action must be a non-empty string, got 3"),
     ({"path": None}, r"video 'a': path must be a non-empty string \(relative to the dataset root\), got None"),
     ({"path": "a\u0000.mp4"}, r"video 'a': path 'a\\x00.mp4' contains a NUL byte"),
     ({"phases": "abc"}, r"video 'a': phases must be a list of names \(strings\), got str"),
     ({"phases": [1, 2, 3]}, r"video 'a': phases must be a list of names \(strings\), got list"),
     ({"fps": float("nan")}, r"video 'a': fps must be a positive number, got nan"),
     ({"fps": float("inf")}, r"video 'a': fps must be a positive number, got inf"),
     ({"fps": True}, r"video 'a': fps must be a positive number, got True"),
     ({"labels": [0, 10**30], "phases": []}, r"video 'a': label 10{30} is above the largest allowed, 9999"),
     ({"labels": [0, 10_000], "phases": []}, r"video 'a': label 10000 is above the largest allowed, 9999"),
     ({"background_label": 3}, r"video 'a': background_label 3 is out of range \(0\.\.2\)"),
     ({"background_label": -1}, r"video 'a': background_label -1 is out of range \(0\.\.2\)"),
     ({"background_label": True}, r"video 'a': background_label must be an integer, got True"),
     ({"labels": [0] * (MAX_FRAMES + 1)},
      rf"video 'a': {MAX_FRAMES + 1} labels, more than the {MAX_FRAMES} frames a video may have")],
)
def test_manifest_fields_are_type_and_range_checked(tmp_path: Path, change: dict, message: str) -> None:
    write_entry(tmp_path, **change)
    with pytest.raises(VavaError, match=r"manifest.jsonl:1: " + message + "$"):
        load_folder(tmp_path)


def test_non_utf8_manifest_names_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "manifest.jsonl").write_bytes(json.dumps(GOOD).encode() + b'\n{"id": "caf\xe9"}\n')
    with pytest.raises(VavaError, match=r"manifest.jsonl:2: not UTF-8 text \(byte 0xe9 at column 12\); "
                                        r"save the manifest as UTF-8$"):
        load_folder(tmp_path)


def test_a_utf8_bom_is_accepted(tmp_path: Path) -> None:
    second = {**GOOD, "id": "b"}
    (tmp_path / "manifest.jsonl").write_bytes(b"\xef\xbb\xbf" + f"{json.dumps(GOOD)}\n{json.dumps(second)}\n".encode())
    assert [r.id for r in load_folder(tmp_path)] == ["a", "b"]


def test_an_over_long_manifest_line_is_refused_before_parsing(tmp_path: Path, monkeypatch) -> None:
    import vava.pipeline.datasets.folder as folder

    monkeypatch.setattr(folder, "MAX_LINE_BYTES", 2**20)
    write_entry(tmp_path, labels=[0] * 2**19)
    with pytest.raises(VavaError, match=r"manifest.jsonl:1: line longer than 1 MiB$"):
        load_folder(tmp_path)


# -- 15: CLI numbers and sizes ----------------------------------------------------------------------


@pytest.mark.parametrize("fps", ["nan", "inf", "-1", "0"])
def test_extract_fps_must_be_positive_and_finite(tiny_dataset: Path, tmp_path: Path, fps: str) -> None:
    result = run_cli(*EXTRACT, "--root", str(tiny_dataset), "--cache", str(tmp_path / "c"), "--fps", fps)
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert f"Invalid value for --fps: must be a positive finite number, got {float(fps)}" in result.output
    assert not (tmp_path / "c").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [(["--fps", "1e12"], "Invalid value for --fps: must be a number from 1 to 1000, got 1000000000000.0"),
     (["--fps", "nan"], "Invalid value for --fps: must be a number from 1 to 1000, got nan"),
     (["--val-fraction", "nan"], "Invalid value for --val-fraction: must be in (0, 1), got nan"),
     (["--speed", "inf"], "Invalid value for --speed: strength must be a number in [0, 1], got inf"),
     (["--frames", "16:100000000"], "Invalid value for --frames/--size: a video of up to 100000000 frames of 64x64 "
                                    "pixels needs about 21362.3 GiB to render, over the 4 GiB limit"),
     (["--size", "100000", "--frames", "16:16"], "Invalid value for --frames/--size: a video of up to 16 frames of "
                                                 "100000x100000 pixels needs about 8344.7 GiB to render")],
)
def test_data_synth_refuses_meaningless_numbers_and_huge_sizes(tmp_path: Path, args: list[str], message: str) -> None:
    result = run_cli("data", "synth", str(tmp_path / "s"), *args)
    assert result.exit_code == 2 and message in result.output and "Traceback" not in result.output
    assert not (tmp_path / "s").exists()


def test_render_size_limit_leaves_the_usual_configs_alone() -> None:
    assert SynthConfig(size=64, frames=(40, 80)).longest_video() == 80
    full = replace(CLEAN, background=1.0)
    assert SynthConfig(frames=(40, 80), variations=full, benchmark=1).longest_video() == 80 + 3 * 40
    assert SynthConfig(frames=(40, 80), variations=full, benchmark=2).longest_video() == 80 + 240  # 75% background
    SynthConfig(size=256, frames=(40, 400), variations=full, benchmark=1)
    with pytest.raises(VavaError, match=r"^frames/size: .* over the 4 GiB limit; use fewer frames or a smaller "
                                        r"size$"):
        SynthConfig(size=512, frames=(40, 400), variations=replace(CLEAN, background=1.0))


# -- 15: a FIFO is refused, not read forever ------------------------------------------------------


# -- 15: data synth never deletes or overwrites files it did not write ----------------------------


def test_synth_rerun_removes_only_its_own_stale_videos(tmp_path: Path) -> None:
    out = tmp_path / "data"
    synthesize(out, tiny_synth(videos=3))
    (out / "videos" / "mine.mp4").write_bytes(b"my own video")
    (out / "notes.txt").write_text("mine")
    synthesize(out, tiny_synth(videos=2))
    assert sorted(p.name for p in (out / "videos").iterdir()) == [
        "fill_000.mp4", "fill_001.mp4", "mine.mp4", "stations_000.mp4", "stations_001.mp4"]
    assert (out / "videos" / "mine.mp4").read_bytes() == b"my own video" and (out / "notes.txt").read_text() == "mine"
    assert json.loads((out / "synth.json").read_text())["videos"] == [
        "fill_000.mp4", "fill_001.mp4", "stations_000.mp4", "stations_001.mp4"]


def test_synth_cleans_up_after_an_interrupted_run(tmp_path: Path, monkeypatch) -> None:
    import vava.pipeline.datasets.synthetic.writer as synthetic  # the module that writes the videos

    out = tmp_path / "data"
    synthesize(out, tiny_synth(videos=3))
    real_write = synthetic.write_video
    calls = []

    def interrupted(path: Path, *args, **kwargs) -> None:
        calls.append(path)
        if len(calls) == 2:
            raise KeyboardInterrupt
        real_write(path, *args, **kwargs)

    monkeypatch.setattr(synthetic, "write_video", interrupted)
    with pytest.raises(KeyboardInterrupt):
        synthesize(out, tiny_synth(videos=1))
    assert not (out / "manifest.jsonl").exists()
    monkeypatch.setattr(synthetic, "write_video", real_write)
    synthesize(out, tiny_synth(videos=1))
    assert sorted(p.name for p in (out / "videos").iterdir()) == ["fill_000.mp4", "stations_000.mp4"]


def test_synth_into_a_foreign_folder_needs_force_and_overwrites_nothing(tmp_path: Path) -> None:
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    refused = run_cli("data", "synth", str(out), "--actions", "1", "--videos", "2", "--size", "32", "--frames", "16:18")
    assert refused.exit_code == 1
    assert "not empty and holds no synthetic dataset (synth.json); use an empty folder (or --force" in refused.output
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]

    forced = run_cli("data", "synth", str(out), "--actions", "1", "--videos", "2", "--size", "32", "--frames",
                     "16:18", "--force")
    assert forced.exit_code == 0, forced.output
    assert (out / "notes.txt").read_text() == "mine" and len(load_folder(out)) == 2

    other = tmp_path / "other"
    other.mkdir()
    (other / "manifest.jsonl").write_text("my manifest\n")
    with pytest.raises(VavaError, match=r"other/manifest.jsonl: exists and was not written by a synth run; "
                                        r"move it away first$"):
        synthesize(other, tiny_synth(), force=True)
    assert sorted(p.name for p in other.iterdir()) == ["manifest.jsonl"]
    assert (other / "manifest.jsonl").read_text() == "my manifest\n"
