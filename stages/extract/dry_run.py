"""`vava extract --dry-run`: what an extraction would cache, from the videos' metadata alone.

Nothing is decoded or written. The weights are read (`load_backbone`), so a missing or unfitting
weights file stops the dry run as it would stop the extraction. Frames are counted with `probe_video`
(videos inside a container file: their labels) and the decoder's keep rule
(`--fps` resampling, then any `keep` mask of the adapter); each cached frame is the backbone's
channels x (S / stride)^2 map in float16. The size on disk is an estimate: the raw size divided by
`COMPRESSION_RATIO`.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from vava.core.backbone import load_backbone
from vava.core.errors import VavaError
from vava.core.records import VideoRecord
from vava.core.videoio import kept_frames
from vava.stages.extract.run import ExtractOptions

# bench/README.md: zstd-3 + byte shuffle on ResNet-50 conv4 maps of 224 px frames (random weights), 1.70x
# smaller than raw float16. Other sizes, backbones and weights compress differently.
COMPRESSION_RATIO = 1.70
FLOAT16_BYTES = 2
_UNITS = ("B", "KiB", "MiB", "GiB", "TiB")


@dataclass
class PlanRow:
    """Videos and kept frames of one split and action (`split`, `action` "" in the total)."""

    split: str
    action: str
    videos: int = 0
    frames: int = 0


@dataclass
class ExtractPlan:
    rows: list[PlanRow]
    total: PlanRow
    frame_bytes: int                       # raw float16 bytes of one cached frame
    frame_shape: tuple[int, int, int]
    weights: str                           # the identity of the weights (`load_backbone`)
    unreadable: dict[str, str] = field(default_factory=dict)  # video id -> why it could not be probed

    def raw_bytes(self, row: PlanRow) -> int:
        return row.frames * self.frame_bytes

    def estimated_bytes(self, row: PlanRow) -> int:
        return round(self.raw_bytes(row) / COMPRESSION_RATIO)


def plan_extract(records: list[VideoRecord], options: ExtractOptions) -> ExtractPlan:
    """Per split and action (in order of first appearance) and in total: videos and kept frames; the
    weights are read first (a `VavaError` when they are missing or do not fit the backbone)."""
    _, weights = load_backbone(options.backbone, options.weights, options.seed)
    shape = options.map_shape
    rows: dict[tuple[str, str], PlanRow] = {}
    total = PlanRow("total", "")
    unreadable = {}
    for record in records:
        try:
            frames = kept_frames(record, options.target_fps)
        except VavaError as err:
            unreadable[record.id] = f"video {record.id!r}: {err}"
            continue
        row = rows.setdefault((record.split, record.action), PlanRow(record.split, record.action))
        for counted in (row, total):
            counted.videos += 1
            counted.frames += frames
    ordered = sorted(rows.values(), key=lambda r: ("train", "val", "test").index(r.split))
    return ExtractPlan(ordered, total, int(np.prod(shape)) * FLOAT16_BYTES, shape, weights, unreadable)


def human_bytes(size: float) -> str:
    """1536 -> '1.5 KiB' (binary units up to TiB)."""
    unit = 0
    while size >= 1024 and unit < len(_UNITS) - 1:
        size /= 1024
        unit += 1
    return f"{size:.0f} B" if unit == 0 else f"{size:.1f} {_UNITS[unit]}"


def plan_table(plan: ExtractPlan, options: ExtractOptions) -> str:
    """The plan as aligned text: a header line, one row per split and action, the total, the estimate's basis."""
    channels, side, _ = plan.frame_shape
    header = ["split", "action", "videos", "frames", "raw float16", "on disk (est.)"]
    rows = [[row.split, row.action, str(row.videos), str(row.frames), human_bytes(plan.raw_bytes(row)),
             human_bytes(plan.estimated_bytes(row))] for row in [*plan.rows, plan.total]]
    widths = [max(len(cells[i]) for cells in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths))).rstrip()
             for cells in [header, *rows]]
    sampling = f"resampled to {options.target_fps:g} fps" if options.target_fps else "every decoded frame"
    heading = (f"dry run, nothing decoded or written: {options.backbone} maps {channels}x{side}x{side} float16 at "
               f"{options.image_size} px = {human_bytes(plan.frame_bytes)} a frame, {sampling}; weights "
               f"{plan.weights[:23]} (read)")
    basis = (f"on disk is an estimate: raw / {COMPRESSION_RATIO:.2f}, the compression measured on 224 px ResNet-50 "
             "conv4 maps (bench/README.md)")
    return "\n".join([heading, *lines, basis]) + "\n"
