"""What a dataset adapter declares: its `Dataset` entry, and its options as a frozen dataclass.

An adapter's options are a config like any other (`vava.core.validation`): a `DatasetOptions` subclass
whose fields are declared with `option(rule, default, help)` and checked when it is built. On the
command line they arrive as `--dataset-option KEY=VALUE` text: `parse_options` reads each value as its
field's type (int, float or text) and words a bad one as given ("--dataset-option fps=0: must be ...").
"""
from __future__ import annotations

import contextlib
import dataclasses
import typing
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vava.core.errors import ConfigError
from vava.core.records import VideoRecord
from vava.core.validation import RULE, Rule, one_of, validate

HELP = "vava.help"


def option(rule: Rule, default: Any, help: str) -> Any:
    """A dataset-option field: its rule (checked when the options are built), its default and its help."""
    return dataclasses.field(default=default, metadata={RULE: rule, HELP: help})


def choice(*choices: str) -> Rule:
    """`one_of(choices)`, refused in the words "not one of a, b" (as the adapters' errors have always read)."""
    listed = ", ".join(choices)
    return dataclasses.replace(one_of(*choices), explain=lambda _: f"not one of {listed}")


@dataclass(frozen=True)
class DatasetOptions:
    """The options of an adapter: subclass it with `option(...)` fields. The base itself takes none."""

    def __post_init__(self) -> None:
        validate(self)


@dataclass(frozen=True)
class Dataset:
    """A registered adapter.

    `load(root, options, *, allow_outside_root)` reads the dataset at `root` with `options` (an instance of
    the `options` class); it refuses video paths outside `root` unless allowed. `fixture(out)` writes a tiny
    dataset in the real on-disk format. `left_out(root, records, options)`, for adapters that skip some of a
    release's videos, says which videos of the release `load` left out and why ({reason: [video, ...]}), for
    `vava data info`. `preset` is the training preset of the papers' protocol (`configs/<preset>.yaml`) and
    `evaluation` its `vava evaluate` options (e.g. the Kendall's tau stride): `vava reproduce` uses both
    unless told otherwise.
    """

    name: str
    summary: str
    load: Callable[..., list[VideoRecord]]
    fixture: Callable[[Path], None]
    options: type[DatasetOptions] = DatasetOptions
    left_out: Callable[..., dict[str, list[str]]] | None = None
    preset: str | None = None
    evaluation: Mapping[str, Any] = field(default_factory=dict)

    def option_help(self) -> list[tuple[str, str, Any]]:
        """(key, help, default) of each option, in declaration order."""
        return [(item.name, item.metadata[HELP], item.default) for item in dataclasses.fields(self.options)]

    def parse_options(self, given: Mapping[str, str]) -> DatasetOptions:
        """The options `given` as `--dataset-option` text, each read as its field's type, the others defaulted."""
        fields = {item.name for item in dataclasses.fields(self.options)}
        unknown = sorted(set(given) - fields)
        if unknown:
            message = f"{self.name} has no option {unknown[0]!r} (its options: {', '.join(sorted(fields)) or 'none'})"
            raise ConfigError(unknown[0], message, f"--dataset-option: {message}")
        hints = typing.get_type_hints(self.options)
        with as_given(given):
            return self.options(**{key: _typed(text, hints[key]) for key, text in given.items()})


def _typed(text: str, hint: Any) -> Any:
    """`text` as an int or float where the field takes one and it parses as one; the text itself otherwise
    (a number field's rule then refuses it)."""
    kinds = typing.get_args(hint) or (hint,)
    for kind in (int, float):
        if kind in kinds:
            with contextlib.suppress(ValueError):
                return kind(text)
    return text


@contextlib.contextmanager
def as_given(given: Mapping[str, str]) -> Iterator[None]:
    """A `ConfigError` for an option in `given` (from its rule or from the loader), re-worded with the
    option as the user wrote it: "--dataset-option fps=0: must be a positive number of frames per second"."""
    try:
        yield
    except ConfigError as err:
        if err.key not in given:
            raise
        raise ConfigError(err.key, err.message, f"--dataset-option {err.key}={given[err.key]}: {err.message}") \
            from None
