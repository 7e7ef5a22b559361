"""A feature set's inputs: everything its features were extracted from, and how.

They are stored readable in the set's zarr.json (attribute `inputs`) and hashed into its fingerprint, so
their layout is fixed: another key or value would be another fingerprint, orphaning every cache on disk::

    format_version      int     the store format when extracted (`vava.cache.fingerprint.FORMAT_VERSION`)
    num_videos          int     videos of the manifest extracted from
    manifest_digest     str     hash of every video's inputs (`vava.cache.fingerprint.video_inputs`)
    backbone            str     a `vava.core.backbone.BACKBONES` name
    layer               str     its cut (`layer3.2`, `layer3`): two cuts never share a feature set
    weights             str     the weights' identity (`sha256:<hex>`, `random:<seed>:<hex>`)
    preprocessing       {image_size, resize, mean, std[, scaler][, decoder], interpolation}: `Preprocessing.describe()`;
                        scaler and decoder only when not at the values sets had before them (float, pyav)
    sampling            {target_fps}: null keeps every decoded frame
    on_length_mismatch  str     error | truncate
    dtype               str     of the stored maps

`FeatureInputs.attrs` is the only writer of this mapping and `FeatureInputs.from_attrs` its only reader,
which accepts exactly what the writer writes: inputs read back write the same mapping, so the same fingerprint.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from vava.core.errors import ConfigError, VavaError, quoted
from vava.core.preprocess import Preprocessing
from vava.core.validation import TEXT, checked, instance, integer, number, optional, validate


@dataclass(frozen=True)
class Sampling:
    """Which decoded frames are kept: about `target_fps` a second, or every one (None)."""

    target_fps: float | None = checked(optional(number(above=0), "a positive finite number or None"))

    def __post_init__(self) -> None:
        validate(self)


@dataclass(frozen=True)
class FeatureSettings:
    """The extraction choices that determine the features (beside the videos), stored as their names say."""

    backbone: str = checked(TEXT)
    layer: str = checked(TEXT)
    weights: str = checked(TEXT)
    preprocessing: Preprocessing = checked(instance(Preprocessing, "a Preprocessing"))
    sampling: Sampling = checked(instance(Sampling, "a Sampling"))
    on_length_mismatch: str = checked(TEXT)
    dtype: str = checked(TEXT)

    def __post_init__(self) -> None:
        validate(self)


@dataclass(frozen=True)
class FeatureInputs:
    """The `settings` a feature set was extracted with, and what else its fingerprint is the hash of."""

    settings: FeatureSettings = checked(instance(FeatureSettings, "a FeatureSettings"))
    num_videos: int = checked(integer(0))
    manifest_digest: str = checked(TEXT)
    format_version: int = checked(integer(1))

    def __post_init__(self) -> None:
        validate(self)

    def attrs(self) -> dict[str, Any]:
        """The inputs as stored (the module docstring's keys, in its order)."""
        settings = self.settings
        return {"format_version": self.format_version, "num_videos": self.num_videos,
                "manifest_digest": self.manifest_digest, "backbone": settings.backbone, "layer": settings.layer,
                "weights": settings.weights, "preprocessing": settings.preprocessing.describe(),
                "sampling": asdict(settings.sampling), "on_length_mismatch": settings.on_length_mismatch,
                "dtype": settings.dtype}

    @classmethod
    def from_attrs(cls, stored: Any, where: str | Path) -> FeatureInputs:
        """The inputs `stored` in the zarr.json of the feature set at `where`; a one-line `VavaError` naming it
        unless they are what `attrs` writes (a damaged zarr.json, or a group no vava extraction wrote)."""
        own = [name for name in _names(cls) if name != "settings"]
        try:
            found = _fields(stored, "inputs", [*own, *_names(FeatureSettings)])
            nested = {"preprocessing": _read(Preprocessing, found, "preprocessing", Preprocessing.UNSTATED),
                      "sampling": _read(Sampling, found, "sampling")}
            settings = FeatureSettings(**{name: nested.get(name, found[name]) for name in _names(FeatureSettings)})
            inputs = cls(settings, **{name: found[name] for name in own})
            problem = _difference(stored, inputs.attrs())
        except ConfigError as err:
            problem = str(err)
        if problem:
            raise VavaError(f"{where}: damaged feature-set inputs in its zarr.json ({problem}); remove the set "
                            "(`vava cache rm`) and extract it again")
        return inputs


def _names(cls: type) -> list[str]:
    return [item.name for item in fields(cls)]


def _fields(value: Any, key: str, names: list[str]) -> dict[str, Any]:
    """`names` of the mapping `value` stored at `key`; `ConfigError` when it is none or lacks one."""
    if value is None:
        raise ConfigError(key, "missing", f"no {key}")
    if not isinstance(value, dict):
        raise ConfigError(key, "not a mapping", f"{key} is {quoted(value)}, not a mapping")
    missing = [name for name in names if name not in value]
    if missing:
        raise ConfigError(key, f"has no {missing[0]}", f"{key} has no {missing[0]}")
    return {name: value[name] for name in names}


def _read(cls: type, found: dict[str, Any], key: str, unstated: dict[str, Any] | None = None) -> Any:
    """Dataclass `cls` from the mapping `found[key]` (JSON lists as tuples), its rules checked; `unstated`: the
    values of keys that a mapping stored before they existed lacks."""
    stored = found[key]
    if unstated and isinstance(stored, dict):
        stored = {**unstated, **stored}
    values = _fields(stored, key, _names(cls))
    try:
        return cls(**{name: tuple(v) if isinstance(v, list) else v for name, v in values.items()})
    except ConfigError as err:
        raise err.within(key) from None


def _difference(stored: Any, written: Any, key: str = "inputs") -> str | None:
    """The first place where `stored` differs from what the writer makes of it (`written`), or None."""
    if isinstance(stored, dict) and isinstance(written, dict):
        if unknown := [name for name in stored if name not in written]:
            return f"{key} has an unknown key {quoted(unknown[0])}"
        if missing := [name for name in written if name not in stored]:
            return f"{key} has no {missing[0]}"
        inner = (_difference(stored[name], written[name], name if key == "inputs" else f"{key}.{name}")
                 for name in written)
        return next(filter(None, inner), None)
    if json.dumps(stored) != json.dumps(written):
        return f"{key} is {quoted(stored)}, not {quoted(written)}"
    return None
