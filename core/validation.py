"""One validation scheme for every config: a `Rule` declared next to each dataclass field, one validator.

A config dataclass declares each field as `name: int = checked(at_least(1), default=1)` and calls
`validate(self)` in `__post_init__`; a value breaking its rule is a `ConfigError` carrying the
field's key. Configs whose keys are options of a command (a class attribute `KEYS_ARE_OPTIONS`)
name the key as an option ("batch_size: must be at least 1, got 0"; the CLI shows its flag,
`vava.core.errors.option_name`), the others as a name ("steps must be at least 1, got 0"). Checks
spanning several fields stay in `__post_init__`, raising `invalid(self, key, ...)`.
"""
from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from vava.core.errors import ConfigError, option_name

RULE = "vava.rule"


@dataclass(frozen=True)
class Rule:
    """What a valid value is: `holds(value)`, described by `phrase` ("at least 1", "one of a, b").

    `explain(value)`, when given, words the problem with a bad value instead of "must be <phrase>".
    """

    holds: Callable[[Any], bool]
    phrase: str
    explain: Callable[[Any], str] | None = None

    def message(self, value: Any) -> str:
        return self.explain(value) if self.explain else f"must be {self.phrase}, got {value!r}"


def is_integer(value: object) -> bool:
    """An int (numpy's too), not a bool."""
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def is_real(value: object) -> bool:
    """A finite int or float (not a bool)."""
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool) \
        and math.isfinite(value)


def integer(at_least: int | None = None, phrase: str | None = None) -> Rule:
    """An integer, at least `at_least` when given."""
    low = -math.inf if at_least is None else at_least
    return Rule(lambda v: is_integer(v) and v >= low, phrase or ("an integer" if at_least is None else
                                                                   f"an integer >= {at_least}"))


def at_least(low: int) -> Rule:
    """An integer >= `low`, in the words "at least `low`"."""
    return integer(low, f"at least {low}")


def number(*, above: float | None = None, at_least: float | None = None, at_most: float | None = None,
           below: float | None = None, phrase: str | None = None) -> Rule:
    """A finite number within the bounds given (`above` and `below` exclusive)."""
    def holds(v: Any) -> bool:
        return is_real(v) and (above is None or v > above) and (at_least is None or v >= at_least) \
            and (at_most is None or v <= at_most) and (below is None or v < below)
    bounds = [f"> {above:g}" if above is not None else "", f">= {at_least:g}" if at_least is not None else "",
              f"<= {at_most:g}" if at_most is not None else "", f"< {below:g}" if below is not None else ""]
    return Rule(holds, phrase or " ".join(["a finite number", *filter(None, bounds)]))


def one_of(*choices: object) -> Rule:
    return Rule(lambda v: v in choices, f"one of {', '.join(map(str, choices))}")


def instance(kind: type | tuple[type, ...], phrase: str) -> Rule:
    """Any value of type `kind` (for str, dict, a nested config: kinds no bool belongs to)."""
    return Rule(lambda v: isinstance(v, kind), phrase)


def optional(rule: Rule, phrase: str | None = None) -> Rule:
    """None, or a value `rule` accepts (`phrase`: the words for the values, "... or None" by default)."""
    return Rule(lambda v: v is None or rule.holds(v), phrase or f"{rule.phrase} or None", rule.explain)


UNIT_INTERVAL = number(at_least=0, at_most=1, phrase="a number in [0, 1]")
FLAG = Rule(lambda v: isinstance(v, bool), "true or false")
TEXT = instance(str, "a string")


def checked(rule: Rule, default: Any = dataclasses.MISSING, *, factory: Any = dataclasses.MISSING) -> Any:
    """A dataclass field whose values `validate` checks against `rule`."""
    return dataclasses.field(default=default, default_factory=factory, metadata={RULE: rule})


def rule_of(item: dataclasses.Field) -> Rule:
    """The rule declared for a field; a TypeError names an undeclared one (every field has one)."""
    if RULE not in item.metadata:
        raise TypeError(f"config field {item.name!r} declares no rule (use validation.checked)")
    return item.metadata[RULE]


def validate(config: Any) -> None:
    """Check every field of dataclass instance `config` against its rule; the first break is a ConfigError."""
    for item in dataclasses.fields(config):
        value, rule = getattr(config, item.name), rule_of(item)
        if not rule.holds(value):
            raise invalid(config, item.name, rule.message(value))


def option_error(key: str, message: str) -> ConfigError:
    """The ConfigError for the value of option `key` ("run"; "frames/size" for two), its text naming the option."""
    return ConfigError(key, message, f"{'/'.join(map(option_name, key.split('/')))}: {message}")


def invalid(config: Any, key: str, message: str) -> ConfigError:
    """The ConfigError for `key` of `config`, its text naming the key as the config's users spell it."""
    if getattr(config, "KEYS_ARE_OPTIONS", False):
        return option_error(key, message)
    return ConfigError(key, message, f"{key} {message}")


__all__ = ["FLAG", "TEXT", "UNIT_INTERVAL", "ConfigError", "Rule", "at_least", "checked", "instance",
           "integer", "invalid", "is_integer", "is_real", "number", "one_of", "option_error", "optional", "rule_of",
           "validate"]
