"""What an evaluation probe declares (its options, what it needs, how it runs, aggregates and renders).

A probe is a `Probe` subclass registered in `stages.evaluate.probes.PROBES`. `vava evaluate`'s
options, report.json's "options", "results" and "per_action" entries and report.md's tables are
generated from the registry. Numbers are kept JSON-ready: fractions and K become string keys.
"""
from __future__ import annotations

import functools
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

import numpy as np

from vava.core.embeddings_file import UNLABELLED, VideoEmbeddings
from vava.core.errors import ConfigError
from vava.core.validation import Rule, at_least, number, option_error
from vava.stages.evaluate.skip import ProbeSkipped

Values = dict[str, object]
Report = dict[str, object]
T = TypeVar("T")


AT_LEAST_ONE = at_least(1)
FRACTION = number(above=0, at_most=1, phrase="in (0, 1]")


@dataclass(frozen=True)
class Option:
    """One evaluation option. A tuple default makes it a comma list of values of its elements' type."""

    name: str
    default: object
    help: str | None = None
    choices: tuple[str, ...] = ()
    check: Rule | None = None  # every value must meet it
    flag: str | None = None  # its name on the command line, when not `name` ("k": --k)
    cli: bool = True         # offered by `vava evaluate`

    @property
    def many(self) -> bool:
        return isinstance(self.default, tuple)

    @property
    def kind(self) -> type:
        return type(self.default[0] if self.many else self.default)

    def parse(self, value: object) -> object:
        """A comma-list option's value as a tuple of its kind (one value is a list of one)."""
        if not self.many:
            return value
        values = (value,) if isinstance(value, (str, int, float)) else value
        return tuple(self.kind(v) for v in values)

    def validate(self, value: object) -> None:
        """Raise a ConfigError carrying `name` when `value` (already parsed) breaks a constraint."""
        values = value if self.many else (value,)
        if self.many and not values:
            raise self.error("give at least one value")
        bad = [v for v in values if v not in self.choices] if self.choices else []
        if bad:
            raise self.error(f"{', '.join(map(repr, bad))} not one of {', '.join(self.choices)}")
        broken = [v for v in values if self.check and not self.check.holds(v)]
        if broken:
            raise self.error(self.check.message(broken[0]))

    def error(self, message: str) -> ConfigError:
        return option_error(self.name, message)


@dataclass(frozen=True)
class Column:
    """A table column: its title and the cell it shows for a dict (results, one action's values, a report)."""

    title: str
    cell: Callable[[Values], str]


@dataclass(frozen=True)
class Metric:
    """One column of a sweep's summary table: its title and the key path of its number in the JSON it is read
    from (a report's results, a diagnostic's file)."""

    title: str
    path: tuple[str, ...]


@dataclass(frozen=True)
class Summary:
    """A probe's table in a sweep's results, one row per run: each metric is read from the run's report
    results (a fraction, shown in percent as mean ± sd over the seeds)."""

    title: str
    metrics: tuple[Metric, ...]


class Action:
    """One action's train and val videos, as every probe of an evaluation sees them.

    A probe that `needs_labels` sees `labelled`: only the videos with at least one labelled frame.
    """

    def __init__(self, train: Sequence[VideoEmbeddings], val: Sequence[VideoEmbeddings]) -> None:
        self.train, self.val = train, val
        self._shared: dict[Hashable, object] = {}

    @functools.cached_property
    def labelled(self) -> Action:
        """The same action without its unlabelled videos (every label -1); shared by the label-based probes."""
        if all(has_labels(v) for v in (*self.train, *self.val)):
            return self
        return Action([v for v in self.train if has_labels(v)], [v for v in self.val if has_labels(v)])

    def shared(self, key: Hashable, make: Callable[[], T]) -> T:
        """`make()`, called once per action and `key`: what several probes read (a classifier's fit) is made once."""
        if key not in self._shared:
            self._shared[key] = make()
        return self._shared[key]


class Probe:
    """An evaluation probe. Subclasses set the class attributes and implement `run` and `aggregate`.

    An instance is made once per evaluation, with the parsed options (`self.o`), when the probe is
    among the tasks asked for.
    """

    name: ClassVar[str]                     # the task name (--tasks, report keys)
    options: ClassVar[tuple[Option, ...]] = ()  # every option it reads; probes may share one Option
    default: ClassVar[bool] = False         # among the default tasks; its report.md section joins the results
    needs_train: ClassVar[bool] = False     # every action must have train videos (labelled ones, with needs_labels)
    needs_labels: ClassVar[bool] = False    # reads phase labels: runs on the labelled videos only
    min_val_videos: ClassVar[int] = 1       # an action with fewer (labelled) val videos skips the probe
    rank: ClassVar[int] = 100               # run order within an action (per_action keys, skip list, sweep tables)
    settings_rank: ClassVar[int] = 0        # place of its `provenance` text in report.md (ties: registry order)

    def __init__(self, o: Any) -> None:
        self.o = o

    def attempt(self, action: Action) -> Values:
        """`run` on the videos it reads, after checking the declared needs; raises ProbeSkipped with the reason."""
        kind = ""
        if self.needs_labels:
            action, kind = action.labelled, "labelled "
            if not action.val:
                raise ProbeSkipped("no labelled val frames")
            if self.needs_train and not action.train:
                raise ProbeSkipped("no labelled train frames")
        if len(action.val) < self.min_val_videos:
            raise ProbeSkipped(f"needs at least {self.min_val_videos} {kind}val videos, found {len(action.val)}")
        return self.run(action)

    def run(self, action: Action) -> Values:
        """This probe's entries of one action's values (merged into report.json's per_action)."""
        raise NotImplementedError

    def aggregate(self, per_action: Sequence[Values]) -> object:
        """results[name]: typically the unweighted mean over the actions that produced a number."""
        raise NotImplementedError

    @classmethod
    def columns(cls, options: Mapping[str, Any]) -> list[Column]:
        """Number columns of the main and per-action tables; cells read results or an action's values."""
        return []

    @classmethod
    def setting_columns(cls) -> list[Column]:
        """Columns of `--compare` tables that show a run's settings; cells read the whole report."""
        return []

    @classmethod
    def section(cls, report: Report) -> str | None:
        """An extra report.md section (None: none)."""
        return None

    @classmethod
    def protocol(cls, options: Mapping[str, Any]) -> str | None:
        """This probe's line of report.md's protocol notes (None: none)."""
        return None

    @classmethod
    def provenance(cls, options: Mapping[str, Any]) -> str | None:
        """Its settings in report.md's provenance line, e.g. "AP@K: stride 1" (None: none)."""
        return None

    @classmethod
    def summary(cls) -> Summary | None:
        """Its table in a sweep's results (None: none); the tables follow the probes' run order (`rank`)."""
        return None


def has_labels(video: VideoEmbeddings) -> bool:
    """Whether any frame of `video` has a known phase label."""
    return bool((video.labels != UNLABELLED).any())


def key(number: float) -> str:
    """JSON key of a fraction or a K."""
    return str(number)


def at(values: object, *path: str) -> object:
    """The value at `path` in nested dicts (None where a key is missing or a part is not a dict)."""
    for part in path:
        values = values.get(part) if isinstance(values, dict) else None
    return values


def collect(per_action: Sequence[Values], *path: str) -> list:
    """The value at `path` in each action's values, where there is one."""
    return [found for values in per_action if (found := at(values, *path)) is not None]


def mean(per_action: Sequence[Values], *path: str) -> float | None:
    """Unweighted mean over the actions that have a number at `path` (None where none does)."""
    values = collect(per_action, *path)
    return float(np.mean(values)) if values else None


def by_reason(entries: Sequence[tuple[str, str, str]], actions: int) -> list[str]:
    """(what, reason, action) entries as one line per what and reason: "what (a, b): reason", or
    "what (every action): reason" when all `actions` (more than one) share it."""
    grouped: dict[tuple[str, str], list[str]] = {}
    for what, reason, action in entries:
        grouped.setdefault((what, reason), []).append(action)
    return [f"{what} ({'every action' if len(found) == actions > 1 else ', '.join(found)}): {reason}"
            for (what, reason), found in grouped.items()]


def percent(value: object) -> str:
    return "-" if value is None else f"{100 * value:.2f}"


def fixed(value: object) -> str:
    return "-" if value is None else f"{value:.4f}"


def markdown(header: list[str], rows: list[list[str]]) -> str:
    """A markdown table; a `|` inside a cell is escaped, so it cannot split the cell."""
    lines = [header, ["---"] * len(header), *rows]
    return "\n".join("| " + " | ".join(cell.replace("|", r"\|") for cell in cells) + " |" for cells in lines) + "\n"
