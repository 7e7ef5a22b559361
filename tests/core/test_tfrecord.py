"""TFRecord framing and the SequenceExample wire format: byte layout, round trips, corrupt and truncated files."""
from __future__ import annotations

import io
import struct
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from vava.core.errors import VavaError
from vava.core.tfrecord import (
    SequenceExample,
    encode_sequence_example,
    iter_records,
    masked_crc,
    parse_sequence_example,
    read_record,
    write_records,
)


def test_masked_crc_of_the_crc32c_check_string() -> None:
    # CRC-32C("123456789") = 0xE3069283 (the standard check value); rotated right by 15 bits: 0x2507C60D;
    # plus 0xA282EAD8 mod 2**32: 0xC78AB0E5
    assert masked_crc(b"123456789") == 0xC78AB0E5


def test_record_framing_byte_by_byte(tmp_path: Path) -> None:
    path = tmp_path / "two.tfrecord"
    assert write_records(path, [b"abc", b"defgh"]) == [0, 19]  # 8 + 4 + 3 + 4 bytes for the first
    raw = path.read_bytes()
    assert len(raw) == 19 + 21
    assert struct.unpack("<QI", raw[:12]) == (3, masked_crc(raw[:8]))
    assert raw[12:15] == b"abc" and struct.unpack("<I", raw[15:19]) == (masked_crc(b"abc"),)
    assert list(iter_records(path)) == [(0, b"abc"), (19, b"defgh")]
    assert read_record(path, 19) == b"defgh"


@pytest.mark.parametrize(("position", "problem"), [(0, "length"), (19 + 12, "data"), (len(b"abc") + 12, "data")])
def test_a_flipped_byte_fails_its_checksum_naming_file_and_offset(tmp_path: Path, position: int, problem: str) -> None:
    path = tmp_path / "two.tfrecord"
    write_records(path, [b"abc", b"defgh"])
    raw = bytearray(path.read_bytes())
    raw[position] ^= 0x01
    path.write_bytes(bytes(raw))
    offset = 19 if position >= 19 else 0
    with pytest.raises(VavaError) as caught:
        list(iter_records(path))
    assert str(caught.value) == f"{path}: record at byte {offset}: {problem} checksum mismatch (the file is corrupt)"


@pytest.mark.parametrize(("size", "reason"), [
    (35, "truncated (5 bytes of data and a checksum need 9 bytes after the header, the file has 4)"),
    (24, "truncated (the file ends inside the record's length header)"),
])
def test_a_truncated_file_names_the_cut_record(tmp_path: Path, size: int, reason: str) -> None:
    path = tmp_path / "cut.tfrecord"
    write_records(path, [b"abc", b"defgh"])
    path.write_bytes(path.read_bytes()[:size])
    records = iter_records(path)
    assert next(records) == (0, b"abc")
    with pytest.raises(VavaError) as caught:
        next(records)
    assert str(caught.value) == f"{path}: record at byte 19: {reason}"


def jpeg(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="JPEG", quality=95)
    return buffer.getvalue()


def test_sequence_example_round_trip_through_a_file(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (5, 8, 12, 3), dtype=np.uint8)
    labels = np.array([0, 0, 1, 2, 2])
    example = SequenceExample(
        context={"name": [b"video one"], "len": np.array([5]), "label": np.array([-1]),
                 "scale": np.array([0.5, -2.0], dtype=np.float32)},
        feature_lists={"video": [[jpeg(frame)] for frame in frames],
                       "frame_labels": [np.array([label]) for label in labels]})
    path = tmp_path / "toy_train-0-of-1.tfrecord"
    offsets = write_records(path, [encode_sequence_example(example)] * 2)
    assert [offset for offset, _ in iter_records(path)] == offsets
    back = parse_sequence_example(read_record(path, offsets[1]), "here")
    assert back.context["name"] == [b"video one"]
    assert back.context["len"].tolist() == [5] and back.context["label"].tolist() == [-1]
    assert back.context["scale"].dtype == np.float32 and back.context["scale"].tolist() == [0.5, -2.0]
    assert np.concatenate(back.feature_lists["frame_labels"]).tolist() == labels.tolist()
    assert [len(step) for step in back.feature_lists["video"]] == [1] * 5
    for step, frame in zip(back.feature_lists["video"], frames, strict=True):
        assert step[0] == jpeg(frame)
        with Image.open(io.BytesIO(step[0])) as image:
            pixels = np.asarray(image)
        assert pixels.dtype == np.uint8 and pixels.shape == (8, 12, 3)


def test_only_the_named_feature_lists_are_decoded() -> None:
    example = SequenceExample({}, {"video": [[b"x"]], "frame_labels": [np.array([3])]})
    back = parse_sequence_example(encode_sequence_example(example), "here", feature_lists=("frame_labels",))
    assert list(back.feature_lists) == ["frame_labels"]


def delimited(number: int, payload: bytes) -> bytes:
    assert len(payload) < 128  # one-byte length
    return bytes([number << 3 | 2, len(payload)]) + payload


def test_unpacked_int64_lists_negative_values_and_unknown_fields() -> None:
    # Int64List with value 5 and -1 written unpacked (varint fields; -1 is ten bytes of two's complement)
    int64_list = b"\x08\x05" + b"\x08" + b"\xff" * 9 + b"\x01"
    feature = delimited(3, int64_list)
    entry = delimited(1, b"k") + delimited(2, feature)
    unknown = b"\x49" + bytes(8)  # field 9, fixed64: skipped
    data = delimited(1, delimited(1, entry)) + unknown
    assert parse_sequence_example(data, "here").context["k"].tolist() == [5, -1]


@pytest.mark.parametrize(("data", "reason"), [
    (b"\x0a\x05ab", "field 1 runs past the end of its message"),
    (b"\x0a" + b"\xff" * 11, "a varint runs past the end of its message"),
    (b"\x0b", "field 1 has the unsupported wire type 3"),
])
def test_malformed_messages_are_one_line_errors(data: bytes, reason: str) -> None:
    with pytest.raises(VavaError) as caught:
        parse_sequence_example(data, "shard.tfrecord: record at byte 7")
    assert str(caught.value) == f"shard.tfrecord: record at byte 7: not a valid SequenceExample ({reason})"
