"""Feature-set inputs: the one writer and the one reader of their stored mapping, old sets, damaged ones."""
from __future__ import annotations

import copy
import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest
import zarr

from vava.cache.fingerprint import stable_hash
from vava.cache.inputs import FeatureInputs, Sampling
from vava.cache.inspect import describe, listing_row
from vava.cache.store import FeatureSet
from vava.core.errors import VavaError
from vava.core.preprocess import Preprocessing

# The inputs of two feature sets as extracted before FeatureInputs existed (zarr.json's `inputs`, key order as
# stored), with their fingerprints: any change to the writer would show here.
WRITTEN_BEFORE = {
    "e1d319354ca956eb": {
        "format_version": 2, "num_videos": 2,
        "manifest_digest": "7b8f02a7b5edf01aa30d3d2d8fb3740c711b2f9a773fc58088357802c4c791f9",
        "backbone": "resnet50", "layer": "layer3.2", "weights": "random:0:bf7302bb91f1fa75",
        "preprocessing": {"image_size": 32, "resize": "stretch", "mean": [0.485, 0.456, 0.406],
                          "std": [0.229, 0.224, 0.225], "interpolation": "bilinear-antialias"},
        "sampling": {"target_fps": None}, "on_length_mismatch": "error", "dtype": "float16"},
    "fd184ce07ba34b9d": {
        "format_version": 2, "num_videos": 2,
        "manifest_digest": "7b8f02a7b5edf01aa30d3d2d8fb3740c711b2f9a773fc58088357802c4c791f9",
        "backbone": "resnet50", "layer": "layer3.2", "weights": "random:0:bf7302bb91f1fa75",
        "preprocessing": {"image_size": 32, "resize": "center_crop", "mean": [0.485, 0.456, 0.406],
                          "std": [0.229, 0.224, 0.225], "interpolation": "bilinear-antialias"},
        "sampling": {"target_fps": 5.0}, "on_length_mismatch": "error", "dtype": "float16"},
}
STORED = WRITTEN_BEFORE["fd184ce07ba34b9d"]


def write_old_set(path: Path, fingerprint: str) -> Path:
    """A feature set's group as `FeatureSet.create` wrote it before FeatureInputs (its `inputs` a plain dict)."""
    zarr.open_group(store=str(path / "videos"), mode="a")
    zarr.open_group(store=str(path), mode="a", attributes={
        "kind": "vava-feature-set", "fingerprint": fingerprint, "inputs": WRITTEN_BEFORE[fingerprint],
        "created": "2026-12-06T10:56:19+00:00", "dataset": {"root": "/data"}})
    return path


@pytest.mark.parametrize("fingerprint", WRITTEN_BEFORE)
def test_inputs_written_before_read_back_and_write_the_same_mapping(fingerprint: str) -> None:
    stored = WRITTEN_BEFORE[fingerprint]
    inputs = FeatureInputs.from_attrs(stored, "somewhere")
    assert json.dumps(inputs.attrs()) == json.dumps(stored)  # keys, key order and values
    assert stable_hash(inputs.attrs())[:16] == stable_hash(stored)[:16] == fingerprint
    assert (inputs.num_videos, inputs.format_version, inputs.settings.layer) == (2, 2, "layer3.2")


def test_a_set_written_before_reads_as_it_did(tmp_path: Path) -> None:
    feature_set = FeatureSet.open(write_old_set(tmp_path / "fd184ce07ba34b9d", "fd184ce07ba34b9d"))
    settings = feature_set.inputs.settings
    assert settings.preprocessing == Preprocessing(32, "center_crop", scaler="float")  # the path before the choice
    assert settings.sampling == Sampling(5.0)
    assert json.dumps(describe(feature_set)["inputs"]) == json.dumps(STORED)
    assert listing_row(feature_set)[1:] == ("resnet50/layer3.2", "32px", "random:0:bf7302bb91f1fa7", "0/2", "/data")


@pytest.mark.parametrize("stored", list(WRITTEN_BEFORE.values()))
def test_the_scaler_and_decoder_enter_the_fingerprint_and_read_back(stored: dict[str, Any]) -> None:
    before = FeatureInputs.from_attrs(stored, "somewhere")
    fingerprints = {}
    for scaler, decoder in (("float", "pyav"), ("uint8", "pyav"), ("float", "torchcodec"), ("uint8", "torchcodec")):
        preprocessing = dataclasses.replace(before.settings.preprocessing, scaler=scaler, decoder=decoder)
        inputs = dataclasses.replace(before, settings=dataclasses.replace(before.settings, preprocessing=preprocessing))
        attrs = json.loads(json.dumps(inputs.attrs()))  # as zarr.json holds them
        assert FeatureInputs.from_attrs(attrs, "somewhere") == inputs
        fingerprints[scaler, decoder] = stable_hash(attrs)[:16]
    assert fingerprints["float", "pyav"] == stable_hash(stored)[:16]  # the path before the choice: as it was
    assert len(set(fingerprints.values())) == 4


def damaged(change: Any) -> dict[str, Any]:
    stored = copy.deepcopy(STORED)
    change(stored)
    return stored


@pytest.mark.parametrize(("stored", "problem"), [
    (None, "no inputs"),
    ([1, 2], "inputs is [1, 2], not a mapping"),
    (damaged(lambda s: s.pop("layer")), "inputs has no layer"),
    (damaged(lambda s: s.update(weights=None)), "weights must be a string, got None"),
    (damaged(lambda s: s.update(num_videos="2")), "num_videos must be an integer >= 0, got '2'"),
    (damaged(lambda s: s.update(colour="red")), "inputs has an unknown key 'colour'"),
    (damaged(lambda s: s.update(preprocessing="big")), "preprocessing is 'big', not a mapping"),
    (damaged(lambda s: s["preprocessing"].pop("std")), "preprocessing has no std"),
    (damaged(lambda s: s["preprocessing"].update(image_size=0)),
     "preprocessing.image_size must be an integer >= 1, got 0"),
    (damaged(lambda s: s["preprocessing"].update(resize="zoom")),
     "preprocessing.resize must be one of stretch, center_crop, got 'zoom'"),
    (damaged(lambda s: s["preprocessing"].update(interpolation="nearest")),
     "preprocessing.interpolation is 'nearest', not 'bilinear-antialias'"),
    (damaged(lambda s: s["preprocessing"].update(crop=1)), "preprocessing has an unknown key 'crop'"),
    (damaged(lambda s: s["preprocessing"].update(scaler="fast")),
     "preprocessing.scaler must be one of uint8, float, got 'fast'"),
    (damaged(lambda s: s["preprocessing"].pop("interpolation")), "preprocessing has no interpolation"),
    (damaged(lambda s: s["sampling"].update(target_fps=-1)),
     "sampling.target_fps must be a positive finite number or None, got -1"),
])
def test_damaged_or_foreign_inputs_are_one_line_naming_the_set(stored: Any, problem: str) -> None:
    with pytest.raises(VavaError) as caught:
        FeatureInputs.from_attrs(stored, "CACHE/fd184ce07ba34b9d")
    assert str(caught.value) == (f"CACHE/fd184ce07ba34b9d: damaged feature-set inputs in its zarr.json ({problem}); "
                                 "remove the set (`vava cache rm`) and extract it again")


def test_a_set_whose_zarr_json_lost_a_key_is_refused_when_its_inputs_are_read(tmp_path: Path) -> None:
    path = write_old_set(tmp_path / "fd184ce07ba34b9d", "fd184ce07ba34b9d")
    meta = json.loads((path / "zarr.json").read_text())
    del meta["attributes"]["inputs"]["preprocessing"]["mean"]
    (path / "zarr.json").write_text(json.dumps(meta))
    feature_set = FeatureSet.open(path)  # opens: the set's videos stay readable
    with pytest.raises(VavaError, match=rf"^{path}: damaged feature-set inputs in its zarr.json \(preprocessing has "
                                        r"no mean\)"):
        listing_row(feature_set)
