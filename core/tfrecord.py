"""TFRecord files of `tf.train.SequenceExample`s, read and written without TensorFlow.

A TFRecord file is a run of records, each framed as: uint64 length, uint32 masked CRC-32C of those 8
bytes, the data, uint32 masked CRC-32C of the data (all little-endian). Both checksums are verified.

The data of each record here is a SequenceExample in protobuf wire format. Only the messages it is
built from are decoded (tag numbers from TensorFlow's `example.proto` and `feature.proto`):

    SequenceExample { Features context = 1; FeatureLists feature_lists = 2; }
    Features        { map<string, Feature> feature = 1; }
    FeatureLists    { map<string, FeatureList> feature_list = 1; }
    FeatureList     { repeated Feature feature = 1; }
    Feature         { oneof { BytesList bytes_list = 1; FloatList float_list = 2; Int64List int64_list = 3; } }
    BytesList { repeated bytes value = 1; }
    FloatList { repeated float value = 1; }  (packed or not)
    Int64List { repeated int64 value = 1; }  (packed or not)

A `Feature` decodes to a list of bytes, a float32 array or an int64 array; other fields are skipped.
"""
from __future__ import annotations

import struct
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import google_crc32c
import numpy as np

from vava.core.errors import VavaError
from vava.core.files import atomic_write

FeatureValue = list[bytes] | np.ndarray
_HEADER = struct.Struct("<QI")
_FOOTER = struct.Struct("<I")
_MASK_DELTA = 0xA282EAD8
_VARINT, _FIXED64, _DELIMITED, _FIXED32 = 0, 1, 2, 5
_BYTES_LIST, _FLOAT_LIST, _INT64_LIST = 1, 2, 3


def masked_crc(data: bytes) -> int:
    """TFRecord's masked CRC-32C of `data`: the CRC rotated right by 15 bits plus a constant, mod 2**32."""
    crc = google_crc32c.value(data)
    return (((crc >> 15) | (crc << 17)) + _MASK_DELTA) & 0xFFFFFFFF


def iter_records(path: str | Path) -> Iterator[tuple[int, bytes]]:
    """(byte offset, data) of every record in the file at `path`, both checksums verified.

    A checksum mismatch or a record cut short is a one-line `VavaError` naming the file and the offset.
    """
    path = Path(path)
    try:
        with path.open("rb") as handle:
            size = path.stat().st_size
            offset = 0
            while offset < size:
                yield offset, _read_record(handle, path, offset, size)
                offset = handle.tell()
    except OSError as err:
        raise VavaError(f"{path}: cannot read ({err.strerror or err})") from None


def read_record(path: str | Path, offset: int) -> bytes:
    """The data of the record that starts at byte `offset` of `path`, both checksums verified."""
    path = Path(path)
    try:
        with path.open("rb") as handle:
            handle.seek(offset)
            return _read_record(handle, path, offset, path.stat().st_size)
    except OSError as err:
        raise VavaError(f"{path}: cannot read ({err.strerror or err})") from None


def _read_record(handle, path: Path, offset: int, size: int) -> bytes:
    where = f"{path}: record at byte {offset}"
    header = handle.read(_HEADER.size)
    if len(header) < _HEADER.size:
        raise VavaError(f"{where}: truncated (the file ends inside the record's length header)")
    length, length_crc = _HEADER.unpack(header)
    if masked_crc(header[:8]) != length_crc:
        raise VavaError(f"{where}: length checksum mismatch (the file is corrupt)")
    needed, left = length + _FOOTER.size, size - offset - _HEADER.size
    if needed > left:
        raise VavaError(f"{where}: truncated ({length} bytes of data and a checksum need {needed} bytes after "
                        f"the header, the file has {left})")
    data = handle.read(length)
    (data_crc,) = _FOOTER.unpack(handle.read(_FOOTER.size))
    if masked_crc(data) != data_crc:
        raise VavaError(f"{where}: data checksum mismatch (the file is corrupt)")
    return data


def frame_record(data: bytes) -> bytes:
    """`data` framed as one TFRecord record."""
    header = struct.pack("<Q", len(data))
    return header + _FOOTER.pack(masked_crc(header)) + data + _FOOTER.pack(masked_crc(data))


def write_records(path: str | Path, records: Iterable[bytes]) -> list[int]:
    """Write `records` as a TFRecord file at `path` (atomically); return each record's byte offset."""
    framed = [frame_record(data) for data in records]
    offsets = np.cumsum([0] + [len(f) for f in framed[:-1]]).tolist()
    atomic_write(path, b"".join(framed))
    return offsets


# ---------------------------------------------------------------------------------------------
# SequenceExample wire format


@dataclass(frozen=True)
class SequenceExample:
    """A decoded SequenceExample: context features, and per-step feature lists (one value per step)."""

    context: dict[str, FeatureValue] = field(default_factory=dict)
    feature_lists: dict[str, list[FeatureValue]] = field(default_factory=dict)


class _WireError(Exception):
    """Malformed protobuf data (turned into a `VavaError` naming the record by `parse_sequence_example`)."""


def _varint(data: memoryview, pos: int) -> tuple[int, int]:
    """The varint at `pos` and the position after it."""
    value = shift = 0
    while pos < len(data) and shift < 70:
        byte = data[pos]
        value |= (byte & 0x7F) << shift
        pos += 1
        if byte < 0x80:
            return value, pos
        shift += 7
    raise _WireError("a varint runs past the end of its message")


def _fields(data: memoryview) -> Iterator[tuple[int, int, int | memoryview]]:
    """(field number, wire type, value) of each field of a message: an int for varints and fixed-width
    fields, a view of the bytes for length-delimited ones."""
    pos = 0
    while pos < len(data):
        key, pos = _varint(data, pos)
        number, wire = key >> 3, key & 7
        if wire == _VARINT:
            value, pos = _varint(data, pos)
        elif wire in (_FIXED64, _FIXED32):
            width = 8 if wire == _FIXED64 else 4
            if pos + width > len(data):
                raise _WireError(f"field {number} runs past the end of its message")
            value, pos = int.from_bytes(data[pos:pos + width], "little"), pos + width
        elif wire == _DELIMITED:
            length, pos = _varint(data, pos)
            if pos + length > len(data):
                raise _WireError(f"field {number} runs past the end of its message")
            value, pos = data[pos:pos + length], pos + length
        else:
            raise _WireError(f"field {number} has the unsupported wire type {wire}")
        yield number, wire, value


def _signed(value: int) -> int:
    return value - (1 << 64) if value >= 1 << 63 else value


def _packed_varints(data: memoryview) -> list[int]:
    values, pos = [], 0
    while pos < len(data):
        value, pos = _varint(data, pos)
        values.append(_signed(value))
    return values


def _feature(data: memoryview) -> FeatureValue:
    kind, values = None, []
    for number, _, payload in _fields(data):
        if number in (_BYTES_LIST, _FLOAT_LIST, _INT64_LIST):
            kind, values = number, _list_values(number, payload)
    if kind == _FLOAT_LIST:
        return np.asarray(values, dtype=np.float32)
    if kind == _INT64_LIST:
        return np.asarray(values, dtype=np.int64)
    return values


def _list_values(kind: int, data: object) -> list:
    if not isinstance(data, memoryview):
        raise _WireError("a feature's value list is not a message")
    values: list = []
    for number, wire, value in _fields(data):
        if number != 1:
            continue
        if kind == _BYTES_LIST and wire == _DELIMITED:
            values.append(bytes(value))
        elif kind == _INT64_LIST and wire == _VARINT:
            values.append(_signed(value))
        elif kind == _INT64_LIST and wire == _DELIMITED:
            values.extend(_packed_varints(value))
        elif kind == _FLOAT_LIST and wire == _FIXED32:
            values.append(struct.unpack("<f", value.to_bytes(4, "little"))[0])
        elif kind == _FLOAT_LIST and wire == _DELIMITED:
            if len(value) % 4:
                raise _WireError("a packed float list is not a whole number of floats")
            values.extend(np.frombuffer(value, dtype="<f4").tolist())
        else:
            raise _WireError(f"a value of wire type {wire} in a {('bytes', 'float', 'int64')[kind - 1]} list")
    return values


def _map_entries(data: memoryview) -> Iterator[tuple[str, memoryview]]:
    """(key, value bytes) of each entry of a map<string, message> field (field 1 of `data`)."""
    for number, wire, entry in _fields(data):
        if number != 1 or wire != _DELIMITED:
            continue
        key, value = "", memoryview(b"")
        for part, part_wire, payload in _fields(entry):
            if part_wire != _DELIMITED:
                continue
            if part == 1:
                try:
                    key = bytes(payload).decode("utf-8")
                except UnicodeDecodeError:
                    raise _WireError("a feature name is not UTF-8") from None
            elif part == 2:
                value = payload
        yield key, value


def parse_sequence_example(data: bytes, where: str, feature_lists: Sequence[str] | None = None) -> SequenceExample:
    """Decode a SequenceExample; only the feature lists named in `feature_lists` (all when None).

    Malformed data is a one-line `VavaError` starting with `where`.
    """
    context: dict[str, FeatureValue] = {}
    lists: dict[str, list[FeatureValue]] = {}
    try:
        for number, wire, payload in _fields(memoryview(data)):
            if wire != _DELIMITED:
                continue
            if number == 1:
                context.update((key, _feature(value)) for key, value in _map_entries(payload))
            elif number == 2:
                for key, value in _map_entries(payload):
                    if feature_lists is None or key in feature_lists:
                        lists[key] = [_feature(f) for n, w, f in _fields(value) if n == 1 and w == _DELIMITED]
    except _WireError as err:
        raise VavaError(f"{where}: not a valid SequenceExample ({err})") from None
    return SequenceExample(context, lists)


def _encode_varint(value: int) -> bytes:
    value &= (1 << 64) - 1  # negative int64s are written as their 10-byte two's complement
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _delimited(number: int, payload: bytes) -> bytes:
    return _encode_varint(number << 3 | _DELIMITED) + _encode_varint(len(payload)) + payload


def _encode_feature(value: FeatureValue) -> bytes:
    if isinstance(value, np.ndarray) and value.dtype.kind == "f":
        values = _delimited(1, value.astype("<f4").tobytes())
        return _delimited(_FLOAT_LIST, values)
    if isinstance(value, np.ndarray):
        packed = b"".join(_encode_varint(int(v)) for v in value.tolist())
        return _delimited(_INT64_LIST, _delimited(1, packed))
    return _delimited(_BYTES_LIST, b"".join(_delimited(1, bytes(v)) for v in value))


def _encode_map(entries: Mapping[str, bytes]) -> bytes:
    return b"".join(_delimited(1, _delimited(1, key.encode()) + _delimited(2, value)) for key, value in entries.items())


def encode_sequence_example(example: SequenceExample) -> bytes:
    """`example` in protobuf wire format (int64 lists packed, as TensorFlow writes them)."""
    context = _encode_map({key: _encode_feature(value) for key, value in example.context.items()})
    lists = _encode_map({key: b"".join(_delimited(1, _encode_feature(v)) for v in values)
                         for key, values in example.feature_lists.items()})
    return _delimited(1, context) + _delimited(2, lists)
