"""Typed configs: dataclasses built from YAML mappings and `key=value` overrides, checked by name.

`from_dict` reads a config's mapping: it checks keys, types and finiteness (and reads YAML's
`1e-4` strings as floats), then the dataclass checks its fields' declared rules (`vava.core.validation`);
every failure is a `ConfigError` carrying the dotted key.
"""
from __future__ import annotations

import dataclasses
import importlib.resources
import math
import types
import typing
from pathlib import Path
from typing import Any

import yaml

from vava.core.errors import ConfigError, VavaError, option_name
from vava.core.files import read_regular

# Presets and sweep plans ship as package data (`vava.configs`), so they work from an installed wheel.
CONFIG_DIR = Path(str(importlib.resources.files("vava.configs")))


def to_dict(config: Any) -> dict[str, Any]:
    return dataclasses.asdict(config)


def from_dict(cls: type, values: dict[str, Any], where: str = "") -> Any:
    """Build dataclass `cls` from nested dicts, rejecting unknown keys and wrong types by name."""
    if not isinstance(values, dict):
        raise ConfigError(where.rstrip('.') or 'config', f"expected a mapping, got {values!r}")
    _check_keys(where.rstrip(".") or "config", values)
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - set(fields))
    if unknown:
        raise ConfigError(f"{where}{unknown[0]}", f"unknown config key (known here: {', '.join(sorted(fields))})")
    kwargs = {}
    for name, value in values.items():
        hint, key = hints[name], f"{where}{name}"
        if dataclasses.is_dataclass(hint):
            kwargs[name] = from_dict(hint, value, f"{key}.")
        else:
            kwargs[name] = _check_type(key, value, hint)
    try:
        return cls(**kwargs)
    except ConfigError as err:
        raise err.within(where.rstrip(".")) if where else err from None


def _check_type(key: str, value: Any, hint: Any) -> Any:
    """`value` if it has type `hint` (a float may be given as an int or a string), with finite numbers only."""
    value = _typed(key, value, hint)
    _check_finite(key, value)
    return value


def _typed(key: str, value: Any, hint: Any) -> Any:
    origin = typing.get_origin(hint)
    allowed = typing.get_args(hint) if origin in (typing.Union, types.UnionType) else (hint,)
    for option in allowed:
        base = typing.get_origin(option) or option
        if option is type(None) and value is None:
            return value
        if base is float and isinstance(value, (int, float, str)) and not isinstance(value, bool):
            try:  # YAML 1.1 reads `1e-4` as a string
                return float(value)
            except (ValueError, OverflowError):
                pass
        if base is not float and isinstance(base, type) and isinstance(value, base):
            if base is int and isinstance(value, bool):
                continue
            return value
    raise ConfigError(key, f"expected {_describe(hint)}, got {value!r}")


def _check_keys(where: str, mapping: dict) -> None:
    for name in mapping:
        if not isinstance(name, str):
            raise ConfigError(where, f"key {name!r} is not a string (config keys are names)")


def _check_finite(key: str, value: Any) -> None:
    """Refuse NaN and infinite numbers anywhere in `value` (a float, or a mapping or list of them)."""
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(key, f"expected a finite number, got {value}")
    if isinstance(value, dict):
        _check_keys(key, value)
        for name, item in value.items():
            _check_finite(f"{key}.{name}", item)
    if isinstance(value, list):
        for index, item in enumerate(value):
            _check_finite(f"{key}[{index}]", item)


def _describe(hint: Any) -> str:
    return getattr(hint, "__name__", None) or str(hint).replace("typing.", "")


def parse_overrides(pairs: tuple[str, ...] | list[str]) -> dict[str, Any]:
    """`["data.frames_per_video=40", "loss.gamma=0.1"]` -> nested dict; values parsed as YAML."""
    flat: dict[str, Any] = {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        if not sep or not key:
            raise VavaError(f"{option_name('set')}: {pair!r} is not KEY=VALUE")
        flat[key] = yaml.safe_load(text)
    return nest(flat)


def nest(dotted: dict[str, Any]) -> dict[str, Any]:
    """`{"loss.gamma": 0.1}` -> `{"loss": {"gamma": 0.1}}`."""
    nested: dict[str, Any] = {}
    for key, value in dotted.items():
        if not isinstance(key, str):
            raise VavaError(f"{key!r}: config keys must be strings")
        node = nested
        *parents, leaf = key.split(".")
        for depth, part in enumerate(parents):
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise VavaError(f"{key}: {'.'.join(parents[:depth + 1])} is already set to {node!r}, not to keys")
        node[leaf] = value
    return nested


def merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        merged[key] = merge(merged[key], value) if isinstance(value, dict) and isinstance(merged.get(key), dict) else value
    return merged


def resolve_preset(name_or_path: str, option: str = "config", folder: str = "") -> Path:
    """A YAML file path, or the name of a preset in `configs/` (e.g. `pouring`) or in its subfolder `folder`
    (e.g. `sweeps`: the plans, given by `option` plan)."""
    path = Path(name_or_path)
    if path.is_file():
        return path
    presets = CONFIG_DIR / folder
    preset = presets / f"{name_or_path}.yaml"
    if preset.is_file():
        return preset
    known = ", ".join(sorted(p.stem for p in presets.glob("*.yaml")))
    what = "preset" if not folder else f"preset in configs/{folder}"
    raise VavaError(f"{option_name(option)}: {name_or_path} is neither a file nor a {what} (presets: {known})")


def read_yaml_mapping(path: Path) -> dict[str, Any]:
    """The mapping a YAML file holds (empty for an empty file); a one-line `VavaError` naming `path` otherwise."""
    try:
        data = yaml.safe_load(read_regular(path).decode("utf-8"))
    except yaml.YAMLError as err:
        raise VavaError(f"{path}: not valid YAML ({str(err).splitlines()[0]})") from None
    except UnicodeDecodeError:
        raise VavaError(f"{path}: not a YAML file (not UTF-8 text)") from None
    except OSError as err:
        raise VavaError(f"{path}: cannot read ({err.strerror or err})") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise VavaError(f"{path}: expected a mapping of keys to values, got a {type(data).__name__}")
    return data
