"""The exceptions that reach users as a single-line message: `VavaError`, and `ConfigError` for config values;
`quoted` for the values they show; `option_name` and `invocation` for the options and commands they name.

Messages name an option by its key (`image_size`) and a step to take by the stage and its options
(`embed(run=RUN)`), as a Python caller passes them. A front end that spells them otherwise installs
its `Naming` while it runs (`naming`): the `vava` CLI names its flags (`--image-size`, `vava embed
--run RUN`), so a message made anywhere below it, wrapped, logged or written to a report, reads as
the command line spells it, and only the CLI knows that spelling.
"""
from __future__ import annotations

import contextlib
import reprlib
from collections.abc import Iterator, Mapping

_SHORT = reprlib.Repr()
_SHORT.maxstring = _SHORT.maxother = 80


def quoted(value: object) -> str:
    """`repr(value)` for a message, cut in the middle to about 80 characters ('abc...xyz'): a value read from
    a file (an id, a path, a name) can be megabytes long, and the message is one line."""
    return _SHORT.repr(value)


class Naming:
    """How messages name options and stage calls; this base class names them as Python callers pass them."""

    def option(self, key: str) -> str:
        """The option `key` ("image_size", "run")."""
        return key

    def invocation(self, stage: str, options: Mapping[str, object]) -> str:
        """A call of `stage` with `options` (True: a switch that is on)."""
        return f"{stage}({', '.join(f'{key}={value}' for key, value in options.items())})"


_naming = Naming()


@contextlib.contextmanager
def naming(names: Naming) -> Iterator[None]:
    """Messages made within the block (in any thread of the process) name options and stage calls by `names`."""
    global _naming
    previous, _naming = _naming, names
    try:
        yield
    finally:
        _naming = previous


def option_name(key: str) -> str:
    """The option `key` as messages name it now: "image_size", or "--image-size" while the CLI runs."""
    return _naming.option(key)


def invocation(stage: str, **options: object) -> str:
    """A call of `stage` a message suggests: "embed(run=RUN)", or "vava embed --run RUN" while the CLI runs."""
    return _naming.invocation(stage, options)


class VavaError(Exception):
    """Bad input or a failed step, explained in one line (the CLI prints it without traceback)."""


class ConfigError(VavaError, ValueError):
    """A config value that breaks its declared constraint.

    `key`: the dotted path of the value ("optim.lr", "image_size"); `message`: what is wrong with it.
    The text shows the key as the config's users spell it (a name, or an option: `option_name`); the
    CLI maps `key` to its own option instead of reading the text. A `ValueError` too, as dataclasses raise.
    """

    def __init__(self, key: str, message: str, text: str | None = None) -> None:
        super().__init__(f"{key}: {message}" if text is None else text)
        self.key, self.message = key, message

    def within(self, prefix: str) -> ConfigError:
        """This error for the config nested at `prefix` (its key and text gain `prefix.`)."""
        return ConfigError(f"{prefix}.{self.key}", self.message, f"{prefix}.{self}")
