"""Registry of training objectives: name -> Objective class (its options: `config_class`).

Each objective module defines an `Objective` subclass and a config dataclass whose fields declare
their rules (`vava.core.validation`); a bad value is a `ConfigError` naming the key.
"""
from __future__ import annotations

import dataclasses
from typing import Any

from vava.core.errors import ConfigError, VavaError, option_name
from vava.stages.train.objectives.base import Objective, PairBatch
from vava.stages.train.objectives.gta import GtaLoss
from vava.stages.train.objectives.lav import LavLoss
from vava.stages.train.objectives.sal import SalLoss
from vava.stages.train.objectives.supervised import SupervisedLoss
from vava.stages.train.objectives.tcc import TccLoss
from vava.stages.train.objectives.tcn import TcnLoss
from vava.stages.train.objectives.vava import VavaLoss

OBJECTIVES: dict[str, type[Objective]] = {
    objective.name: objective
    for objective in (VavaLoss, TccLoss, LavLoss, GtaLoss, TcnLoss, SalLoss, SupervisedLoss)
}


def build_config(name: str, options: dict[str, Any] | None = None) -> Any:
    """The config dataclass of objective `name`, defaults overridden by `options` (checked)."""
    if name not in OBJECTIVES:
        raise VavaError(f"{option_name('objective')}: unknown objective {name!r} "
                        f"(known: {', '.join(sorted(OBJECTIVES))})")
    config_type = OBJECTIVES[name].config_class
    known = {f.name for f in dataclasses.fields(config_type)}
    unknown = sorted(set(options or {}) - known)
    if unknown:
        raise VavaError(f"objective {name}: unknown option(s) {', '.join(unknown)} (known: {', '.join(sorted(known))})")
    try:
        return config_type(**(options or {}))
    except ConfigError as err:  # the options are the training config's `loss`
        raise ConfigError(f"loss.{err.key}", err.message, f"objective {name}: {err}") from None


def build_objective(name: str, options: dict[str, Any] | None = None) -> Objective:
    """A ready objective module for `name` with `options` applied."""
    return OBJECTIVES[name](build_config(name, options))


__all__ = ["OBJECTIVES", "Objective", "PairBatch", "build_config", "build_objective"]
