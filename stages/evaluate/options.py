"""Every choice the evaluation makes, with its default; the protocols are in docs/evaluation.md.

The options are the two general ones (`tasks`, `background`) and those the registered probes declare.
"""
from __future__ import annotations

from vava.core.embeddings_file import BACKGROUND_MODES
from vava.core.errors import VavaError
from vava.stages.evaluate.probes import PROBES, Registry
from vava.stages.evaluate.probes.base import Option

BACKGROUND = Option("background", "keep", choices=BACKGROUND_MODES,
                    help="keep: background is its own class (with background); drop: removed before the probes.")


def declared_options(probes: Registry = PROBES) -> tuple[Option, ...]:
    """`tasks`, `background`, then each probe's options in registry order (a shared option once)."""
    tasks = Option("tasks", tuple(name for name, probe in probes.items() if probe.default), choices=tuple(probes),
                   help=f"Comma list of: {', '.join(probes)}.")
    found: dict[str, Option] = {}
    for probe in probes.values():
        for option in probe.options:
            if found.setdefault(option.name, option) != option:
                raise TypeError(f"probe {probe.name!r} declares an option {option.name!r} unlike another probe's")
    return (tasks, BACKGROUND, *found.values())


class EvalOptions:
    """Every option of the registered probes, parsed and checked, read as attributes (`o.fractions`)."""

    def __init__(self, probes: Registry = PROBES, **values: object) -> None:
        """Defaults for the options not given; an unknown name or a value breaking a constraint is a VavaError."""
        declared = {option.name: option for option in declared_options(probes)}
        unknown = sorted(set(values) - set(declared))
        if unknown:
            raise VavaError(f"unknown evaluation option(s): {', '.join(unknown)}")
        self.values: dict[str, object] = {}
        for name, option in declared.items():
            self.values[name] = option.parse(values.get(name, option.default))
            option.validate(self.values[name])
        self.probes = probes

    def __getattr__(self, name: str) -> object:
        try:
            return self.__dict__["values"][name]
        except KeyError:
            raise AttributeError(name) from None

    def selected(self) -> Registry:
        """The probes of `tasks`, in registry order, each once."""
        return {name: probe for name, probe in self.probes.items() if name in self.tasks}

    def as_dict(self) -> dict[str, object]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in self.values.items()}
