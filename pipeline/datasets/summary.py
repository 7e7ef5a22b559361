"""What a dataset holds, per action: videos per split, frames and phases (`vava data info`)."""
from __future__ import annotations

from dataclasses import dataclass, field

from vava.core.records import SPLITS, VideoRecord


@dataclass
class ActionSummary:
    action: str
    videos: dict[str, int] = field(default_factory=lambda: dict.fromkeys(SPLITS, 0))
    frames: int = 0           # frames of the labelled videos (after any `keep` mask)
    unlabelled: int = 0       # videos without labels (their frames are counted when decoded)
    phases: tuple[str, ...] = ()


def summarise(records: list[VideoRecord]) -> list[ActionSummary]:
    """One `ActionSummary` per action, in order of first appearance."""
    actions: dict[str, ActionSummary] = {}
    for record in records:
        summary = actions.setdefault(record.action, ActionSummary(record.action))
        summary.videos[record.split] += 1
        if record.num_frames is None:
            summary.unlabelled += 1
        else:
            summary.frames += record.num_frames
        if len(record.phases) > len(summary.phases):
            summary.phases = record.phases
    return list(actions.values())


def summary_table(summaries: list[ActionSummary]) -> str:
    """A plain-text table of `summarise`'s result, with a total row."""
    rows = [("action", *SPLITS, "frames", "phases")]
    for s in summaries:
        frames = f"{s.frames}" + (f" (+{s.unlabelled} unlabelled)" if s.unlabelled else "")
        rows.append((s.action, *(str(s.videos[split]) for split in SPLITS), frames,
                     f"{len(s.phases)}: {', '.join(s.phases)}" if s.phases else "-"))
    unlabelled = sum(s.unlabelled for s in summaries)
    rows.append(("total", *(str(sum(s.videos[split] for s in summaries)) for split in SPLITS),
                 f"{sum(s.frames for s in summaries)}" + (f" (+{unlabelled} unlabelled)" if unlabelled else ""), ""))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in rows)
