"""Config overrides (core/config.py): `--set KEY=VALUE` texts parsed into nested keys."""
from __future__ import annotations

import pytest

from vava.core.config import parse_overrides
from vava.core.errors import VavaError


def test_conflicting_set_keys_are_named() -> None:
    with pytest.raises(VavaError, match=r"^data\.batch_pairs: data is already set to 3, not to keys$"):
        parse_overrides(["data=3", "data.batch_pairs=2"])
