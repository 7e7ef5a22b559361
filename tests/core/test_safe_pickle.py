"""The restricted unpickler: tensors, arrays and OrderedDicts come back; any other global is refused unrun."""
from __future__ import annotations

import collections
import os
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from vava.core.errors import VavaError
from vava.core.safe_pickle import load_pickle


@pytest.mark.parametrize("protocol", [2, 3, 4, 5])
def test_tensors_arrays_and_ordered_dicts_round_trip(tmp_path: Path, protocol: int) -> None:
    path = tmp_path / "data.pkl"
    value = [{"id": 0, "name": "a", "frame_label": torch.tensor([0, 0, 1, 2]), "seq_len": 4,
              "array": np.arange(3, dtype=np.int16), "scalar": np.int64(7),
              "order": collections.OrderedDict(b=1, a=2)}]
    path.write_bytes(pickle.dumps(value, protocol=protocol))
    back = load_pickle(path)[0]
    assert back["frame_label"].dtype == torch.int64 and back["frame_label"].tolist() == [0, 0, 1, 2]
    assert back["array"].dtype == np.int16 and back["array"].tolist() == [0, 1, 2]
    assert back["scalar"] == 7 and list(back["order"].items()) == [("b", 1), ("a", 2)]
    assert (back["id"], back["name"], back["seq_len"]) == (0, "a", 4)


def test_a_view_of_a_tensor_keeps_its_offset(tmp_path: Path) -> None:
    path = tmp_path / "view.pkl"
    path.write_bytes(pickle.dumps(torch.arange(10)[3:7]))
    assert load_pickle(path).tolist() == [3, 4, 5, 6]


def test_any_other_global_is_refused_before_it_runs(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    path = tmp_path / "evil.pkl"
    path.write_bytes(b"cos\nsystem\n(S'touch " + str(marker).encode() + b"'\ntR.")  # os.system("touch ...")
    with pytest.raises(VavaError) as caught:
        load_pickle(path)
    assert str(caught.value) == (f"{path}: refused to unpickle the global os.system (only torch tensors, numpy "
                                 "arrays and plain Python values are read from pickles)")
    assert not marker.exists()


class _Payload:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return os.mkdir, (str(self.marker),)


def test_tensor_storage_bytes_are_loaded_with_weights_only(tmp_path: Path) -> None:
    # A crafted pickle that hands a payload to torch.storage._load_from_bytes, which torch itself would
    # load with weights_only=False: the restricted loader refuses it.
    marker = tmp_path / "ran"
    inner = pickle.dumps(_Payload(marker), protocol=2)
    path = tmp_path / "storage.pkl"
    path.write_bytes(b"ctorch.storage\n_load_from_bytes\n(" + pickle.dumps(inner, protocol=2)[2:-1] + b"tR.")
    with pytest.raises(VavaError) as caught:
        load_pickle(path)
    message = str(caught.value)  # ends with torch's own line naming the global (its wording is torch's)
    assert message.startswith(f"{path}: refused the tensor storage: torch.load(weights_only=True) cannot read it (")
    assert "mkdir" in message and "\n" not in message
    assert not marker.exists()


def test_a_truncated_pickle_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "cut.pkl"
    path.write_bytes(pickle.dumps([1, 2, 3])[:-3])
    with pytest.raises(VavaError) as caught:
        load_pickle(path)
    assert str(caught.value) == f"{path}: not a readable pickle (UnpicklingError: pickle data was truncated)"
