"""Render settings shared by the synthetic generator's tests."""
from __future__ import annotations

SMALL = dict(size=32, frames=(20, 30), benchmark=1)  # the tests up to "benchmark 2" are those of benchmark 1
V2 = dict(size=32, frames=(40, 60), benchmark=2)
V3 = dict(size=32, frames=(40, 60), benchmark=3)
