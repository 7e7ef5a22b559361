"""Pouring: both on-disk layouts read to the same records, TensorFlow's interleaved order, bad shards and
pickles named in one line, and the frames extracted from the TFRecord shards themselves."""
from __future__ import annotations

import dataclasses
import io
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from vava.cache.store import FeatureSet
from vava.core.backbone import load_backbone
from vava.core.decode import VideoDecoder
from vava.core.errors import VavaError
from vava.core.preprocess import Preprocessing
from vava.core.records import MAX_FRAMES
from vava.core.tfrecord import encode_sequence_example, iter_records, write_records
from vava.pipeline.datasets import load_dataset
from vava.pipeline.datasets.pouring import (
    FIXTURE_LABELS,
    FIXTURE_VIDEOS,
    PHASES,
    encode_jpeg,
    fixture_frames,
    tcc_example,
    write_carl_fixture,
    write_fixture,
)
from vava.stages.extract.run import ExtractOptions, extract


@pytest.fixture
def shards(tmp_path: Path) -> Path:
    write_fixture(tmp_path / "tfrecord")
    return tmp_path / "tfrecord"


@pytest.fixture
def carl(tmp_path: Path) -> Path:
    write_carl_fixture(tmp_path / "carl")
    return tmp_path / "carl"


def shape(records) -> list[tuple]:
    return [(r.id, r.split, r.action, r.phases, r.labels.tolist(), r.background_label) for r in records]


def test_the_tfrecord_layout_points_each_video_at_its_record(shards: Path) -> None:
    records = load_dataset("pouring", shards)
    assert shape(records) == [(name, split, "pouring", PHASES, [0, 0, 1, 1, 2, 2], None)
                              for name, split in FIXTURE_VIDEOS]
    train = shards / "pouring_train-0-of-1.tfrecord"
    assert [(r.path, r.member) for r in records[:2]] == [(train.resolve(), offset) for offset, _ in iter_records(train)]
    assert (records[2].path, records[2].member) == ((shards / "pouring_val-0-of-1.tfrecord").resolve(), 0)
    assert {r.fps for r in records} == {30.0} and all(r.confined_to == shards.resolve() for r in records)


def test_both_layouts_read_to_the_same_records(shards: Path, carl: Path) -> None:
    from_carl = load_dataset("pouring", carl)
    assert shape(from_carl) == shape(load_dataset("pouring", shards))
    assert [r.path for r in from_carl] == [(carl / "videos" / f"{name}.mp4").resolve() for name, _ in FIXTURE_VIDEOS]
    assert {(r.fps, r.member) for r in from_carl} == {(None, None)}  # the mp4s carry their own frame rate
    assert shape(load_dataset("pouring", carl, options={"layout": "carl"})) == shape(from_carl)


def test_shards_are_read_in_tensorflows_interleaved_order(tmp_path: Path) -> None:
    labels = np.array([0, 1, 2, 3, 4])
    for shard, names in (("pouring_train-0-of-2.tfrecord", "abc"), ("pouring_train-1-of-2.tfrecord", "d"),
                         ("pouring_val-0-of-1.tfrecord", "ef")):
        write_records(tmp_path / shard, [encode_sequence_example(tcc_example(n, fixture_frames(0)[:5], labels))
                                         for n in names])
    records = load_dataset("pouring", tmp_path)
    assert [(r.id, r.split) for r in records] == [("a", "train"), ("d", "train"), ("b", "train"), ("c", "train"),
                                                  ("e", "val"), ("f", "val")]


def test_layout_detection_names_what_it_looked_for(tmp_path: Path, shards: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(VavaError) as caught:
        load_dataset("pouring", empty)
    assert str(caught.value) == f"{empty}: not a Pouring dataset (looked for pouring_*.tfrecord shards and train.pkl)"
    with pytest.raises(VavaError) as caught:
        load_dataset("pouring", shards, options={"layout": "carl"})
    assert str(caught.value) == f"{shards / 'train.pkl'}: missing (the carl layout needs train.pkl and val.pkl)"
    (shards / "pouring_val-0-of-1.tfrecord").unlink()
    with pytest.raises(VavaError) as caught:
        load_dataset("pouring", shards)
    assert str(caught.value) == f"{shards}: no pouring_val* shards (the tfrecord layout needs train and val shards)"


def test_a_corrupt_shard_names_the_shard_and_offset(shards: Path) -> None:
    train = shards / "pouring_train-0-of-1.tfrecord"
    second = [offset for offset, _ in iter_records(train)][1]
    raw = bytearray(train.read_bytes())
    raw[second + 40] ^= 0xFF
    train.write_bytes(bytes(raw))
    with pytest.raises(VavaError) as caught:
        load_dataset("pouring", shards)
    assert str(caught.value) == f"{train}: record at byte {second}: data checksum mismatch (the file is corrupt)"


def test_a_name_given_twice_is_refused_naming_both_records(tmp_path: Path) -> None:
    example = encode_sequence_example(tcc_example("twice", fixture_frames(0)[:2], np.array([0, 1])))
    write_records(tmp_path / "pouring_train-0-of-1.tfrecord", [example])
    offsets = write_records(tmp_path / "pouring_val-0-of-1.tfrecord", [example, example])
    with pytest.raises(VavaError) as caught:
        load_dataset("pouring", tmp_path)
    train, val = tmp_path / "pouring_train-0-of-1.tfrecord", tmp_path / "pouring_val-0-of-1.tfrecord"
    assert str(caught.value) == (f"{val}: record at byte 0: video 'twice': duplicate name "
                                 f"(first in {train}: record at byte 0)")
    assert offsets == [0, len(example) + 16]


def test_a_label_outside_the_five_phases_is_refused(tmp_path: Path) -> None:
    example = tcc_example("bad", fixture_frames(0)[:3], np.array([0, 5, 1]))
    write_records(tmp_path / "pouring_train-0-of-1.tfrecord", [encode_sequence_example(example)])
    write_records(tmp_path / "pouring_val-0-of-1.tfrecord", [])
    with pytest.raises(VavaError) as caught:
        load_dataset("pouring", tmp_path)
    assert str(caught.value) == (f"{tmp_path / 'pouring_train-0-of-1.tfrecord'}: record at byte 0: video 'bad': "
                                 "frame label 5 is not a phase id (0..4)")


def test_a_len_that_disagrees_with_the_frame_labels_is_refused(tmp_path: Path) -> None:
    example = tcc_example("short", fixture_frames(0)[:3], np.array([0, 1, 2]))
    example.context["len"] = np.array([4])
    write_records(tmp_path / "pouring_train-0-of-1.tfrecord", [encode_sequence_example(example)])
    write_records(tmp_path / "pouring_val-0-of-1.tfrecord", [])
    with pytest.raises(VavaError, match=r"record at byte 0: video 'short': `len` is 4 but there are 3 frame labels$"):
        load_dataset("pouring", tmp_path)


def rewrite_pickle(path: Path, change) -> None:
    with path.open("rb") as handle:
        entries = pickle.load(handle)  # the test's own file
    change(entries)
    path.write_bytes(pickle.dumps(entries))


def test_a_frame_label_seq_len_mismatch_names_pickle_and_video(carl: Path) -> None:
    rewrite_pickle(carl / "val.pkl", lambda entries: entries[0].update(seq_len=7))
    with pytest.raises(VavaError) as caught:
        load_dataset("pouring", carl)
    assert str(caught.value) == (f"{carl / 'val.pkl'}: entry 0: video 'pour_c' (videos/pour_c.mp4): frame_label "
                                 "has 6 entries but seq_len is 7")


@pytest.mark.parametrize(("frame_label", "message"), [
    ([[0, 1], [1]], "frame_label must be a 1-D integer tensor (setting an array element with a sequence)"),
    # a few bytes of pickle can declare an uninitialised array of billions of entries: refused before any copy
    (np.zeros(MAX_FRAMES + 1, np.uint8),
     f"frame_label has {MAX_FRAMES + 1} entries, more than the {MAX_FRAMES} frames a video may have"),
    (torch.zeros(1, dtype=torch.int64).expand(10**11),  # 500 bytes of pickle; 800 GB once copied
     f"frame_label has {10**11} entries, more than the {MAX_FRAMES} frames a video may have"),
])
def test_a_ragged_or_huge_frame_label_is_refused(carl: Path, frame_label: object, message: str) -> None:
    rewrite_pickle(carl / "val.pkl", lambda entries: entries[0].update(frame_label=frame_label,
                                                                       seq_len=len(frame_label)))
    with pytest.raises(VavaError) as caught:
        load_dataset("pouring", carl)
    assert str(caught.value) == f"{carl / 'val.pkl'}: entry 0: video 'pour_c' (videos/pour_c.mp4): {message}"


@pytest.mark.parametrize(("key", "message"), [
    ("name", "video id must be a string, got list [[[[[[[...]]]]]]]"),
    ("video_file",
     "video 'pour_c': path must be a non-empty string (relative to the dataset root), got [[[[[[[...]]]]]]]"),
    ("seq_len", "video 'pour_c' (videos/pour_c.mp4): seq_len must be an integer, got [[[[[[[...]]]]]]]"),
])
def test_a_value_nested_past_the_recursion_limit_is_named_in_one_line(carl: Path, key: str, message: str) -> None:
    entry = {"name": "pour_c", "video_file": "videos/pour_c.mp4", "frame_label": [0] * 6, "seq_len": 6}
    entry[key] = "NESTED"
    depth = 100_000  # pickle.dumps cannot write it (its own recursion); the opcodes nest lists without one
    nested = b"]" * depth + b"a" * (depth - 1)
    (carl / "val.pkl").write_bytes(pickle.dumps([entry], protocol=2).replace(b"X\x06\x00\x00\x00NESTED", nested))
    with pytest.raises(VavaError) as caught:
        load_dataset("pouring", carl)
    assert str(caught.value) == f"{carl / 'val.pkl'}: entry 0: {message}"


def test_a_video_file_outside_the_root_is_refused(carl: Path) -> None:
    rewrite_pickle(carl / "train.pkl", lambda entries: entries[1].update(video_file="../elsewhere.mp4"))
    with pytest.raises(VavaError, match=r"entry 1: video 'pour_b' \(\.\./elsewhere\.mp4\): path '\.\./elsewhere\.mp4' "
                                        r"leads outside the dataset root"):
        load_dataset("pouring", carl)


class _Shell:
    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self):
        import os
        return os.system, (self.command,)


def test_a_pickle_that_would_run_code_is_refused_unrun(carl: Path, tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    (carl / "train.pkl").write_bytes(pickle.dumps([{"name": "x", "seq_len": _Shell(f"touch {marker}")}]))
    with pytest.raises(VavaError) as caught:
        load_dataset("pouring", carl)
    assert str(caught.value) == (f"{carl / 'train.pkl'}: refused to unpickle the global posix.system (only torch "
                                 "tensors, numpy arrays and plain Python values are read from pickles)")
    assert not marker.exists()


def decoded_jpegs(index: int) -> torch.Tensor:
    """The fixture video's frames as its JPEGs decode, (T, 3, H, W) uint8."""
    frames = []
    for frame in fixture_frames(index):
        with Image.open(io.BytesIO(encode_jpeg(frame))) as image:
            frames.append(torch.from_numpy(np.array(image.convert("RGB"))).permute(2, 0, 1))
    return torch.stack(frames)


def test_the_decoder_reads_the_jpegs_of_the_record_with_resampling_and_keep(shards: Path) -> None:
    record = load_dataset("pouring", shards)[1]
    chunks = list(VideoDecoder(record, chunk_frames=4))
    assert [c.indices.tolist() for c in chunks] == [[0, 1, 2, 3], [4, 5]]
    assert torch.equal(torch.cat([c.frames for c in chunks]), decoded_jpegs(1))
    decoder = VideoDecoder(record, target_fps=10.0)  # 30 fps -> every third frame
    assert [c.indices.tolist() for c in decoder] == [[0, 3]] and decoder.decoded_frames == 6
    kept = dataclasses.replace(record, keep=np.array([1, 0, 1, 1, 0, 1], dtype=bool))
    frames = torch.cat([c.frames for c in VideoDecoder(kept)])
    assert torch.equal(frames, decoded_jpegs(1)[[0, 2, 3, 5]])


def test_extracting_the_tfrecord_fixture_caches_the_backbone_of_its_jpegs(shards: Path, tmp_path: Path) -> None:
    records = load_dataset("pouring", shards)
    summary = extract(records, tmp_path / "cache", ExtractOptions(weights="random", image_size=32, progress=False))
    assert summary.ok and sorted(summary.extracted) == ["pour_a", "pour_b", "pour_c"]
    fs = FeatureSet.open(summary.path)
    net, _ = load_backbone("resnet50", "random", seed=0)
    for index, (name, split) in enumerate(FIXTURE_VIDEOS):
        assert np.array_equal(fs.labels(name), FIXTURE_LABELS)
        with torch.inference_mode():
            expected = net(Preprocessing(32)(decoded_jpegs(index))).numpy()
        cached = fs.read(name).astype(np.float32)
        assert cached.shape == (6, 1024, 2, 2)
        assert np.abs(cached - expected).max() < 2e-3 * np.abs(expected).max()
        video = fs.video(name)
        assert (video.split, video.action, video.fps, video.phases) == (split, "pouring", 30.0, PHASES)
        assert (Path(video.source_path), video.source_member) == (records[index].path, records[index].member)
