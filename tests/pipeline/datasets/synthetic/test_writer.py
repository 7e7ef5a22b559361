"""Writing a synthetic dataset (pipeline/datasets/synthetic/writer.py): byte-identical for a seed, the manifest,
flags and provenance it writes, its splits, and what it overwrites or removes (only its own files)."""
from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import av
import numpy as np
import pytest

from tests.helpers import cli
from tests.pipeline.datasets.synthetic.helpers import SMALL, V2, V3
from vava.core.errors import VavaError
from vava.core.records import FLAG_BACKGROUND, FLAG_CUTAWAY, FLAG_DISTRACTION, frame_flags
from vava.pipeline.datasets.folder import load_folder
from vava.pipeline.datasets.synthetic import ACTIONS, CLEAN, WILD, WILD_V2, SynthConfig, synthesize
from vava.pipeline.datasets.synthetic.writer import _splits


def decoded_frame_count(path: Path) -> int:
    with av.open(str(path)) as container:
        return sum(1 for _ in container.decode(video=0))


def tiny_config(**overrides) -> SynthConfig:
    return SynthConfig(**{"actions": 2, "videos": 3, **SMALL, **overrides})


def tiny_synth(**overrides: object) -> SynthConfig:
    return SynthConfig(**{"actions": 2, "videos": 2, "size": 32, "frames": (16, 18), "variations": CLEAN, **overrides})


# -- determinism -----------------------------------------------------------------------------------


def test_synthesize_is_byte_identical_for_a_seed(tmp_path):
    config = tiny_config(variations=WILD)
    first = synthesize(tmp_path / "a", config)
    second = synthesize(tmp_path / "b", config)
    other = synthesize(tmp_path / "c", replace(config, seed=1))
    assert first == second
    assert (tmp_path / "a/manifest.jsonl").read_bytes() == (tmp_path / "b/manifest.jsonl").read_bytes()
    for entry in first:
        assert (tmp_path / "a" / entry["path"]).read_bytes() == (tmp_path / "b" / entry["path"]).read_bytes()
    assert [e["labels"] for e in other] != [e["labels"] for e in first]
    assert (tmp_path / "c/videos/fill_000.mp4").read_bytes() != (tmp_path / "a/videos/fill_000.mp4").read_bytes()


def test_a_video_does_not_depend_on_how_many_are_requested(tmp_path):
    few = synthesize(tmp_path / "few", tiny_config(videos=2))
    more = synthesize(tmp_path / "more", tiny_config(videos=4))
    labels_more = {e["id"]: e["labels"] for e in more}
    for entry in few:
        assert entry["labels"] == labels_more[entry["id"]]
        assert (tmp_path / "few" / entry["path"]).read_bytes() == (tmp_path / "more" / entry["path"]).read_bytes()


# -- output format ---------------------------------------------------------------------------------


def test_manifest_matches_the_videos_and_loads(tmp_path):
    calls = []
    config = tiny_config(variations=WILD)
    entries = synthesize(tmp_path, config, progress=lambda done, total: calls.append((done, total)))
    assert calls == [(k, 6) for k in range(1, 7)]
    assert [e["id"] for e in entries] == [f"{a}_{i:03d}" for a in list(ACTIONS)[:2] for i in range(3)]
    records = load_folder(tmp_path)
    assert [r.id for r in records] == [e["id"] for e in entries]
    for record in records:
        phases = ACTIONS[record.action]
        assert record.phases == (*phases, "background")
        assert record.background_label == len(phases)
        assert record.fps == config.fps
        assert decoded_frame_count(record.path) == record.num_frames
        assert record.labels.min() >= 0 and record.labels.max() <= len(phases)
        assert np.array_equal(record.flags, frame_flags(record.labels, len(phases)))
    for action in list(ACTIONS)[:2]:
        assert {r.split for r in records if r.action == action} == {"train", "val"}
    provenance = json.loads((tmp_path / "synth.json").read_text())
    assert provenance["config"]["variations"] == vars(WILD)
    assert provenance["config"]["frames"] == [20, 30] and provenance["config"]["benchmark"] == 1


def test_v2_synthesize_writes_flags_and_the_version(tmp_path):
    entries = synthesize(tmp_path, SynthConfig(actions=2, videos=3, variations=WILD_V2, **V2))
    assert json.loads((tmp_path / "synth.json").read_text())["config"]["benchmark"] == 2
    for entry in entries:
        assert entry["flags"] == frame_flags(np.array(entry["labels"]), entry["background_label"]).tolist()


def test_v3_synthesize_writes_kind_flags(tmp_path):
    entries = synthesize(tmp_path, SynthConfig(actions=2, videos=3, variations=WILD_V2, **V3))
    flags = np.concatenate([entry["flags"] for entry in entries])
    assert ((flags & FLAG_CUTAWAY) > 0).any() and ((flags & FLAG_DISTRACTION) > 0).any()
    assert ((flags & (FLAG_CUTAWAY | FLAG_DISTRACTION) == 0) | (flags & FLAG_BACKGROUND > 0)).all()
    assert {r.id: r.flags.tolist() for r in load_folder(tmp_path)} == {e["id"]: e["flags"] for e in entries}


def test_thirty_videos_split_twenty_to_ten():
    assert _splits(30, 0.34) == ["train"] * 20 + ["val"] * 10


# -- only its own files are overwritten or removed -------------------------------------------------


def test_overwrites_its_own_dataset_but_refuses_other_folders(tmp_path):
    synthesize(tmp_path / "data", tiny_config(videos=3))
    synthesize(tmp_path / "data", tiny_config(videos=2))
    names = sorted(p.name for p in (tmp_path / "data/videos").iterdir())
    assert names == ["fill_000.mp4", "fill_001.mp4", "stations_000.mp4", "stations_001.mp4"]
    assert len(load_folder(tmp_path / "data")) == 4
    (tmp_path / "other").mkdir()
    (tmp_path / "other/notes.txt").write_text("mine")
    with pytest.raises(VavaError, match="not empty"):
        synthesize(tmp_path / "other", tiny_config())
    assert sorted(p.name for p in (tmp_path / "other").iterdir()) == ["notes.txt"]


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
    refused = cli("data", "synth", str(out), "--actions", "1", "--videos", "2", "--size", "32", "--frames", "16:18")
    assert refused.exit_code == 1
    assert "not empty and holds no synthetic dataset (synth.json); use an empty folder (or --force" in refused.output
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]

    forced = cli("data", "synth", str(out), "--actions", "1", "--videos", "2", "--size", "32", "--frames",
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
