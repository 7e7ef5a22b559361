"""Stage 1 in-process: values, batching across videos, resampling, bad videos, reuse; worker errors, video ids
and the final accounting; damaged videos extracted again."""
from __future__ import annotations

import dataclasses
import json
import re
import shutil
from dataclasses import replace
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
import torch
from PIL import Image

import vava.stages.extract.run as extract_run
from tests.conftest import make_folder_dataset, moving_square, read_manifest
from tests.helpers import EXTRACT, cli, flip_chunk_bytes, shards, watch_store_opens
from vava.cache.fingerprint import feature_set_fingerprint, stable_hash
from vava.cache.inspect import verify
from vava.cache.store import FeatureSet
from vava.core.backbone import load_backbone
from vava.core.decode import VideoDecoder
from vava.core.errors import VavaError
from vava.core.preprocess import Preprocessing
from vava.pipeline.datasets.folder import load_folder, write_manifest
from vava.stages.extract.run import ExtractOptions, ExtractSummary, extract, feature_settings

FAST = ExtractOptions(weights="random", image_size=64, batch_size=7, workers=2, progress=False)


def test_cached_frames_equal_backbone_of_decoded_frames(tiny_dataset: Path, tmp_path: Path) -> None:
    records = load_folder(tiny_dataset)
    summary = extract(records, tmp_path / "cache", FAST)
    assert summary.ok and sorted(summary.extracted) == ["v0", "v1", "v2"] and summary.frames == 18 + 22 + 25
    fs = FeatureSet.open(summary.path)
    assert summary.path == tmp_path / "cache" / summary.fingerprint
    net, identity = load_backbone("resnet50", "random", seed=0)
    # the inputs read back from the set's zarr.json are those extracted with, and hash to its fingerprint
    assert fs.inputs == feature_set_fingerprint(records, feature_settings(FAST, identity)).inputs
    assert stable_hash(fs.inputs.attrs())[:16] == summary.fingerprint
    for record in records:
        cached = fs.read(record.id)
        assert cached.dtype == np.float16 and cached.shape == (record.num_frames, 1024, 4, 4)
        assert np.array_equal(fs.labels(record.id), record.labels)
        assert np.array_equal(fs.frame_index(record.id), np.arange(record.num_frames))
        frames = torch.cat([c.frames for c in VideoDecoder(record)])
        with torch.inference_mode():
            expected = net(Preprocessing(64)(frames)).numpy()
        scale = np.abs(expected).max()
        assert np.abs(cached.astype(np.float32) - expected).max() < 2e-3 * scale
    video = fs.video("v1")
    assert (video.split, video.action, video.fps, video.phases) == ("train", "slide", 15.0, ("left", "right"))


def test_each_scaler_caches_the_backbone_of_its_own_frames(tiny_dataset: Path, tmp_path: Path) -> None:
    """At 64 -> 32 px the two scalers give other values: two feature sets, each the backbone of the frames its
    preprocessing makes (the uint8 one resized by FFmpeg while decoding)."""
    records = load_folder(tiny_dataset)[:1]
    net, _ = load_backbone("resnet50", "random", seed=0)
    maps, sets = {}, set()
    for scaler in ("uint8", "float"):
        summary = extract(records, tmp_path / "cache", replace(FAST, image_size=32, scaler=scaler))
        sets.add(summary.path)
        feature_set = FeatureSet.open(summary.path)
        preprocessing = feature_set.inputs.settings.preprocessing
        assert summary.ok and preprocessing == Preprocessing(32, scaler=scaler)
        frames = torch.cat([preprocessing(c.frames) for c in VideoDecoder(records[0], preprocessing=preprocessing)])
        with torch.inference_mode():
            expected = net(frames).numpy()
        maps[scaler] = feature_set.read("v0").astype(np.float32)
        assert np.abs(maps[scaler] - expected).max() < 2e-3 * np.abs(expected).max()
    assert len(sets) == 2 and not np.array_equal(maps["uint8"], maps["float"])


def test_a_frames_maps_do_not_depend_on_the_frames_batched_with_it(tiny_dataset: Path, tmp_path: Path) -> None:
    """What lets a resumed or distributed extraction equal an uninterrupted one bit for bit."""
    records = load_folder(tiny_dataset)
    whole = FeatureSet.open(extract(records, tmp_path / "whole", FAST).path)  # v1 batched with v0 and v2
    shutil.copytree(tmp_path / "whole", tmp_path / "again")
    again = FeatureSet.open(tmp_path / "again" / whole.fingerprint)
    again.remove_video("v1")
    summary = extract(records, tmp_path / "again", FAST)  # v1 alone: batches of 7, 7, 7 and 1 frames
    assert summary.extracted == ["v1"]
    for record in records:
        assert np.array_equal(again.read(record.id), whole.read(record.id))


def test_the_two_resnet50_cuts_never_share_a_feature_set(tiny_dataset: Path) -> None:
    records = load_folder(tiny_dataset)
    default, full = (feature_settings(ExtractOptions(backbone=name), "sha256:same-file")
                     for name in ("resnet50", "resnet50-layer3"))
    assert (default.layer, full.layer) == ("layer3.2", "layer3")
    assert dataclasses.replace(default, backbone=full.backbone, layer=full.layer) == full
    assert feature_set_fingerprint(records, default)[0] != feature_set_fingerprint(records, full)[0]
    # the cut alone (same backbone name and weights file) separates them
    assert feature_set_fingerprint(records, dataclasses.replace(full, backbone="resnet50"))[0] != \
        feature_set_fingerprint(records, default)[0]


def test_flags_are_stored_for_the_kept_frames(tiny_dataset: Path, tmp_path: Path) -> None:
    entries = read_manifest(tiny_dataset)
    entries[2]["flags"] = [(i * 5) % 8 for i in range(25)]
    write_manifest(tiny_dataset, entries)
    records = load_folder(tiny_dataset)
    summary = extract(records, tmp_path / "cache", ExtractOptions(**{**FAST.__dict__, "target_fps": 5.0}))
    fs = FeatureSet.open(summary.path)
    index = fs.frame_index("v2")
    assert index.tolist() == list(range(0, 25, 3))
    flags = fs.flags("v2")
    assert flags.dtype == np.uint8 and flags.tolist() == [(i * 5) % 8 for i in range(0, 25, 3)]
    assert "flags" not in zarr_members(fs, "v1") and fs.flags("v1").tolist() == [0] * len(fs.labels("v1"))


def zarr_members(feature_set: FeatureSet, video_id: str) -> list[str]:
    return sorted(p.name for p in (feature_set.path / "videos" / video_id).iterdir() if p.is_dir())


def test_second_run_does_no_work(tiny_dataset: Path, tmp_path: Path) -> None:
    records = load_folder(tiny_dataset)
    first = extract(records, tmp_path / "cache", FAST)
    second = extract(load_folder(tiny_dataset), tmp_path / "cache", FAST)
    assert second.path == first.path and second.extracted == [] and sorted(second.cached) == ["v0", "v1", "v2"]
    other = extract(records, tmp_path / "cache", ExtractOptions(**{**FAST.__dict__, "image_size": 32}))
    assert other.path != first.path and FeatureSet.open(other.path).read("v0").shape == (18, 1024, 2, 2)


def test_resampling_keeps_matching_labels(tiny_dataset: Path, tmp_path: Path) -> None:
    records = load_folder(tiny_dataset)
    summary = extract(records, tmp_path / "cache", ExtractOptions(**{**FAST.__dict__, "target_fps": 5.0}))
    fs = FeatureSet.open(summary.path)
    index = fs.frame_index("v2")
    assert index.tolist() == list(range(0, 25, 3))
    assert np.array_equal(fs.labels("v2"), records[2].labels[index])
    assert fs.video("v2").fps == 5.0 and fs.video("v2").decoded_frames == 25


def test_length_mismatch_error_or_truncate(tmp_path: Path) -> None:
    root = tmp_path / "data"
    entries = make_folder_dataset(root, [12, 14])
    entries[0]["labels"] += [1, 1]  # two labels too many
    entries[1]["labels"] = entries[1]["labels"][:-3]  # three too few
    write_manifest(root, entries)
    summary = extract(load_folder(root), tmp_path / "cache", FAST)
    assert summary.failed["v0"] == ("video 'v0': 14 labels but 12 decoded frames (-2 frames); fix the manifest "
                                    "or pass on_length_mismatch truncate")
    assert "11 labels but 14 decoded frames (+3 frames)" in summary.failed["v1"]
    assert FeatureSet.open(summary.path).videos(include_incomplete=True) == []

    truncated = extract(load_folder(root), tmp_path / "cache", ExtractOptions(**{**FAST.__dict__, "on_length_mismatch": "truncate"}))
    fs = FeatureSet.open(truncated.path)
    assert truncated.ok and fs.read("v0").shape[0] == 12 and fs.labels("v0").tolist() == entries[0]["labels"][:12]
    assert fs.read("v1").shape[0] == 11 and fs.video("v1").decoded_frames == 14


def write_empty_video(path: Path) -> None:
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("libx264", rate=Fraction(15))
        stream.width, stream.height, stream.pix_fmt = 64, 64, "yuv420p"
        container.start_encoding()  # header only, no frames


def test_bad_videos_fail_alone_and_nothing_cached_is_lost(tmp_path: Path) -> None:
    root = tmp_path / "data"
    entries = make_folder_dataset(root, [10, 10, 10, 10, 10])
    (root / "videos" / "v1.mp4").unlink()                                 # missing file
    (root / "videos" / "v2.mp4").write_bytes(b"\x00garbage" * 64)        # corrupt file
    write_empty_video(root / "videos" / "v3.mp4")                         # zero frames
    frames = root / "frames4"
    frames.mkdir()
    for i, frame in enumerate(moving_square(10, seed=4)):
        Image.fromarray(frame).save(frames / f"{i:04d}.png")
    (frames / "0005.png").write_bytes(b"broken")                          # unreadable frame
    entries[4]["path"] = "frames4"
    write_manifest(root, entries)

    summary = extract(load_folder(root), tmp_path / "cache", FAST)
    assert summary.extracted == ["v0"]
    assert set(summary.failed) == {"v1", "v2", "v3", "v4"}
    assert "file not found" in summary.failed["v1"]
    assert "cannot decode" in summary.failed["v2"]
    assert "no video stream" in summary.failed["v3"] or "no frames could be decoded" in summary.failed["v3"]
    assert "cannot decode frame" in summary.failed["v4"] and "0005.png" in summary.failed["v4"]
    fs = FeatureSet.open(summary.path)
    kept = fs.read("v0")
    assert [v.id for v in fs.videos(include_incomplete=True)] == ["v0"]  # failed partials are removed

    again = extract(load_folder(root), tmp_path / "cache", FAST)
    assert again.cached == ["v0"] and set(again.failed) == {"v1", "v2", "v3", "v4"}
    assert np.array_equal(FeatureSet.open(again.path).read("v0"), kept)


def test_invalid_options_are_named() -> None:
    with pytest.raises(VavaError, match="^image_size: 50 is not a positive multiple of 16"):
        ExtractOptions(image_size=50).validate()
    with pytest.raises(VavaError, match="^batch_size: must be at least 1"):
        ExtractOptions(batch_size=0).validate()
    with pytest.raises(VavaError, match="^on_length_mismatch: "):
        ExtractOptions(on_length_mismatch="pad").validate()


def test_unlabelled_videos_and_keep_masks(tiny_dataset: Path, tmp_path: Path) -> None:
    """An unlabelled video caches every decoded frame with label -1; a keep mask drops frames before the
    backbone, the kept frames' maps equal those of the full extraction, and the mask is in the fingerprint."""
    records = load_folder(tiny_dataset)
    full = FeatureSet.open(extract(records, tmp_path / "full", FAST).path)
    keep = np.arange(22) % 3 != 1
    changed = [dataclasses.replace(records[0], labels=None),
               dataclasses.replace(records[1], keep=keep, flags=np.full(22, 1, np.uint8)), records[2]]
    assert changed[0].num_frames is None and changed[1].num_frames == int(keep.sum())
    summary = extract(changed, tmp_path / "cache", FAST)
    assert summary.path != full.path and summary.frames == 18 + int(keep.sum()) + 25
    fs = FeatureSet.open(summary.path)
    assert fs.labels("v0").tolist() == [-1] * 18 and fs.read("v0").shape[0] == 18
    assert fs.frame_index("v1").tolist() == np.flatnonzero(keep).tolist()
    assert np.array_equal(fs.labels("v1"), records[1].labels[keep]) and fs.flags("v1").tolist() == [1] * keep.sum()
    assert np.array_equal(fs.read("v1"), full.read("v1")[keep])
    with pytest.raises(VavaError, match=r"video 'v1': keep need one entry per label"):
        dataclasses.replace(records[1], keep=keep[:-1])
    with pytest.raises(VavaError, match=r"video 'v1': no frame is kept"):
        dataclasses.replace(records[1], keep=np.zeros(22, bool))


# -- issue 16, point 14: weights that give non-finite features ------------------------------------
def nan_weights(tmp_path: Path, how: str) -> Path:
    """A resnet18 state dict whose conv1 weights are NaN, or whose first BatchNorm variance is negative."""
    from torchvision import models

    state = models.resnet18().state_dict()
    if how == "nan":
        state["conv1.weight"][0, 0, 0, 0] = float("nan")
    else:
        state["bn1.running_var"][3] = -1.0  # (x - mean) / sqrt(var): NaN
    path = tmp_path / f"{how}.pt"
    torch.save({k: v for k, v in state.items() if not k.startswith(("layer4", "fc"))}, path)
    return path


@pytest.mark.parametrize("how", ["nan", "negative-variance"])
def test_weights_giving_non_finite_features_stop_at_the_first_batch(tiny_dataset: Path, tmp_path: Path,
                                                                    how: str) -> None:
    weights = nan_weights(tmp_path, how)
    options = dataclasses.replace(FAST, backbone="resnet18", weights=str(weights), workers=1)
    with pytest.raises(VavaError) as caught:
        extract(load_folder(tiny_dataset), tmp_path / "cache", options)
    assert str(caught.value) == (f"weights {weights}: the resnet18 backbone gives NaN or infinite features "
                                 "(first in video 'v0'); the weights are damaged or not for this backbone (videos "
                                 "finished so far are kept)")
    (path,) = (p for p in (tmp_path / "cache").iterdir() if not p.name.startswith("."))  # not .locks
    assert FeatureSet.open(path).videos() == []  # nothing non-finite was stored


def test_repair_that_cannot_extract_again_names_what_it_left_damaged(tiny_dataset: Path, tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    import vava.stages.extract.run as extract_run

    records = load_folder(tiny_dataset)
    path = extract(records, tmp_path / "cache", FAST).path
    for shard in (path / "videos" / "v1" / "features" / "c").rglob("0"):
        if shard.is_file():
            shard.write_bytes(b"\0" + shard.read_bytes()[1:])  # damaged: fails its checksum
    # the same weights now give NaN (as the damaged weights of a set extracted before this check would)
    monkeypatch.setattr(extract_run, "backbone_maps", lambda net, images, device: np.full(
        (len(images), 1024, 4, 4), np.nan, dtype=np.float16))
    with pytest.raises(VavaError, match=r"^weights random: the resnet50 backbone gives NaN or infinite features "
                                        r"\(first in video 'v1'\); .*; not repaired: 'v1' \(found damaged, not "
                                        r"extracted again\)$"):
        extract(records, tmp_path / "cache", dataclasses.replace(FAST, repair=True))


def test_the_progress_bar_counts_to_the_frames_the_dry_run_plans(tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture) -> None:
    """With --fps, and for unlabelled videos, the bar's total is the frames cached (an ETA), not the labels."""
    make_folder_dataset(tmp_path / "data", [18, 22, 25], fps=20.0)
    entries = read_manifest(tmp_path / "data")
    for entry in entries[1:]:  # two unlabelled videos: no label count to go by
        del entry["labels"], entry["phases"]
    write_manifest(tmp_path / "data", entries)
    options = ExtractOptions(weights="random", image_size=32, target_fps=10.0, workers=1)
    summary = extract(load_folder(tmp_path / "data"), tmp_path / "cache", options)
    assert summary.frames == 9 + 11 + 13  # 20 -> 10 fps keeps every other frame
    final = capsys.readouterr().err.replace("\r", "\n").splitlines()[-1]
    assert final.startswith("extract: 100%") and " 33/33 [" in final


# -- worker errors, video ids and the final accounting ---------------------------------------------


ONE_WORKER = ExtractOptions(weights="random", image_size=64, batch_size=7, workers=1, progress=False)


def test_an_exception_in_a_decode_worker_costs_one_video(tiny_dataset: Path, tmp_path: Path, monkeypatch) -> None:
    real_lock = extract_run.video_lock

    def video_lock(path: Path, video_id: str):
        if video_id == "v1":  # what a NUL byte in the id did: os.open raised ValueError in the thread
            raise ValueError("embedded null byte")
        return real_lock(path, video_id)

    monkeypatch.setattr(extract_run, "video_lock", video_lock)
    result = cli(*EXTRACT, "--root", str(tiny_dataset), "--cache", str(tmp_path / "c"), "--workers", "1")
    assert result.exit_code == 1
    assert "failed: video 'v1': ValueError: embedded null byte" in result.stderr
    assert "3 videos: 2 extracted (43 frames" in result.stderr and "1 failed" in result.stderr
    assert "nothing to do" not in result.stderr


def test_a_reused_job_identity_does_not_drop_later_videos(tmp_path: Path, monkeypatch) -> None:
    root = tmp_path / "data"
    make_folder_dataset(root, [8, 9, 10])
    (root / "videos" / "v0.mp4").unlink()
    # Every job gets the same id(): what happens when a failed job is freed and its address reused.
    monkeypatch.setattr(extract_run, "id", lambda obj: 0, raising=False)
    summary = extract(load_folder(root), tmp_path / "cache", ONE_WORKER)
    assert list(summary.failed) == ["v0"] and summary.extracted == ["v1", "v2"]


def test_a_video_the_run_lost_track_of_becomes_a_failure(tiny_dataset: Path, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(extract_run._ExtractionRun, "_finish", lambda self, job, end: job.lock.release())
    result = cli(*EXTRACT, "--root", str(tiny_dataset), "--cache", str(tmp_path / "c"))
    assert result.exit_code == 1 and "3 failed" in result.stderr and "nothing to do" not in result.stderr
    assert ("failed: video 'v0': neither extracted nor failed (an internal error lost track of it); "
            "rerun `vava extract`") in result.stderr


def test_summary_accounting_leaves_each_video_in_one_outcome() -> None:
    summary = ExtractSummary(Path("fs"), "f", extracted=["a", "b", "a"], cached=["c"], failed={"b": "broken"})
    summary.account_for(["a", "b", "c", "d"])
    assert summary.extracted == ["a"] and summary.cached == ["c"] and summary.by_others == []
    assert summary.failed["b"] == "broken" and "neither extracted nor failed" in summary.failed["d"]


def test_the_ranks_summaries_merge_into_the_jobs() -> None:
    rank0 = ExtractSummary(Path("fs"), "f", extracted=["a"], cached=["c"], damaged={"a": "unreadable"}, frames=30,
                           seconds=2.5, waiting_s=0.5, backbone_s=1.5)
    rank1 = ExtractSummary(Path("fs"), "f", extracted=["b"], by_others=["d"], failed={"e": "broken"}, frames=12,
                           seconds=4.0, waiting_s=3.0, backbone_s=0.5)
    travelled = [ExtractSummary.from_json(json.loads(json.dumps(part.to_json()))) for part in (rank0, rank1)]
    assert travelled == [rank0, rank1]
    assert ExtractSummary.merged(travelled) == ExtractSummary(
        Path("fs"), "f", extracted=["a", "b"], cached=["c"], by_others=["d"], failed={"e": "broken"},
        damaged={"a": "unreadable"}, frames=42, seconds=4.0, waiting_s=3.0, backbone_s=0.5)  # the slowest rank's


def test_extract_checks_ids_before_doing_anything(tiny_dataset: Path, tmp_path: Path) -> None:
    good = load_folder(tiny_dataset)
    long = replace(good[0], id="v" * 300)
    with pytest.raises(VavaError, match=r"^extract: video id 'v{40}'\.\.\. is 300 bytes long"):
        extract([*good[1:], long], tmp_path / "cache", ONE_WORKER)
    assert not (tmp_path / "cache").exists()


# -- damaged videos extracted again; a fully cached set is only read -------------------------------


def test_extract_repairs_damaged_videos(tiny_dataset: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    path = Path(cli(*EXTRACT, "--root", str(tiny_dataset), "--cache", str(cache)).stdout.strip().splitlines()[-1])
    original = {v: FeatureSet.open(path).read(v) for v in ("v0", "v1", "v2")}
    shards(path, "v2")[0].unlink()
    flip_chunk_bytes(path, "v1")

    again = cli(*EXTRACT, "--root", str(tiny_dataset), "--cache", str(cache))  # stat-only check: finds the deletion
    assert again.exit_code == 0, again.output
    assert "damaged, extracted again: v2: unreadable (features/c/0/0/0/0 is missing)" in again.stderr
    assert "3 videos: 1 extracted" in again.stderr and "2 already cached" in again.stderr

    repaired = cli(*EXTRACT, "--root", str(tiny_dataset), "--cache", str(cache), "--repair")
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
    path = Path(cli(*EXTRACT, "--root", str(tiny_dataset), "--cache", str(cache)).stdout.strip().splitlines()[-1])
    shards(path, "v2")[0].unlink()
    decoder = extract_run.VideoDecoder

    def unreadable_v2(record, *args):
        if record.id == "v2":
            raise VavaError("video 'v2': cannot be decoded any more")
        yield from decoder(record, *args)

    monkeypatch.setattr(extract_run, "VideoDecoder", unreadable_v2)
    result = cli(*EXTRACT, "--root", str(tiny_dataset), "--cache", str(cache))
    assert result.exit_code == 1
    assert result.stderr.splitlines()[:2] == [
        "damaged, not repaired (see failed): v2: unreadable (features/c/0/0/0/0 is missing)",
        "failed: video 'v2': cannot be decoded any more"]


def test_extract_of_a_fully_cached_set_writes_nothing(tiny_dataset: Path, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    cache = tmp_path / "cache"
    path = cli(*EXTRACT, "--root", str(tiny_dataset), "--cache", str(cache)).stdout.strip().splitlines()[-1]
    shutil.rmtree(cache / ".locks")
    opened = watch_store_opens(monkeypatch)
    again = cli(*EXTRACT, "--root", str(tiny_dataset), "--cache", str(cache))
    assert again.exit_code == 0 and again.stdout.strip().splitlines()[-1] == path
    assert "3 already cached" in again.stderr
    assert not (cache / ".locks").exists() and opened and all(read_only for _, read_only in opened)


@pytest.mark.parametrize("slow", ["decoding", "backbone"])
def test_the_summary_says_whether_decoding_or_the_backbone_bounds_the_run(slow: str, tiny_dataset: Path,
                                                                          tmp_path: Path, monkeypatch) -> None:
    """A sleep on one side of the frame queue shows up in that side's seconds (the GPU check reads them);
    the backbone is replaced by zeros so that only the sleeps take time."""
    import time

    calls = []

    class SlowDecoder(VideoDecoder):
        def __iter__(self):
            for chunk in super().__iter__():
                time.sleep(0.2 if slow == "decoding" else 0)
                yield chunk

    def slow_backbone(backbone, images, device):
        calls.append(time.sleep(0.2 if slow == "backbone" else 0))
        return np.zeros((len(images), 1024, 4, 4), np.float16)

    monkeypatch.setattr(extract_run, "VideoDecoder", SlowDecoder)
    monkeypatch.setattr(extract_run, "backbone_maps", slow_backbone)
    summary = extract(load_folder(tiny_dataset), tmp_path / "cache", FAST)
    assert summary.ok and summary.frames == 65 and len(calls) == 10  # 65 frames in batches of 7
    assert summary.waiting_s + summary.backbone_s <= summary.seconds
    if slow == "backbone":
        assert summary.backbone_s >= 0.2 * 10 > 5 * summary.waiting_s
    else:  # 6 chunks of 16 frames on 2 workers: one of them sleeps at least 3 times in a row
        assert summary.waiting_s >= 0.6 > 5 * summary.backbone_s
