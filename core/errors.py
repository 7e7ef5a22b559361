"""The exceptions that reach users as a single-line message: `VavaError`, and `ConfigError` for config values;
`quoted` for the values they show."""
from __future__ import annotations

import reprlib

_SHORT = reprlib.Repr()
_SHORT.maxstring = _SHORT.maxother = 80


def quoted(value: object) -> str:
    """`repr(value)` for a message, cut in the middle to about 80 characters ('abc...xyz'): a value read from
    a file (an id, a path, a name) can be megabytes long, and the message is one line."""
    return _SHORT.repr(value)


class VavaError(Exception):
    """Bad input or a failed step, explained in one line (the CLI prints it without traceback)."""


class ConfigError(VavaError, ValueError):
    """A config value that breaks its declared constraint.

    `key`: the dotted path of the value ("optim.lr", "image_size"); `message`: what is wrong with it.
    The text shows the key as the config's users spell it (a name, or a command-line flag); the CLI
    maps `key` to its own option instead of reading the text. A `ValueError` too, as dataclasses raise.
    """

    def __init__(self, key: str, message: str, text: str | None = None) -> None:
        super().__init__(f"{key}: {message}" if text is None else text)
        self.key, self.message = key, message

    def within(self, prefix: str) -> ConfigError:
        """This error for the config nested at `prefix` (its key and text gain `prefix.`)."""
        return ConfigError(f"{prefix}.{self.key}", self.message, f"{prefix}.{self}")
