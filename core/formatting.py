"""Plain-text output for the terminal: durations and column-aligned tables."""
from __future__ import annotations

from collections.abc import Sequence


def duration(seconds: float) -> str:
    """A duration rounded for reading: "45 s", "12 min", "3.4 h", "2.1 days", "4.9 years"."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    if seconds < 48 * 3600:
        return f"{seconds / 3600:.1f} h"
    if seconds < 365 * 86400:
        return f"{seconds / 86400:.1f} days"
    return f"{seconds / (365.25 * 86400):.1f} years"


def columns(rows: Sequence[Sequence[str]], gap: str = "  ") -> str:
    """The rows (the first is the header) with every column left-aligned to its widest cell."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join(gap.join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in rows)
