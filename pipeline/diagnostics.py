"""Diagnostics of trained runs, by objective: `DIAGNOSTICS`, which `vava sweep` runs after evaluating each run.

An objective's diagnostic is registered here, in the pipeline layer, rather than declared by the objective
itself: a diagnostic reads a trained objective (stage train) with the evaluation's scoring (stage evaluate),
and no stage imports another. A diagnostic writes one file in the run folder and adds its numbers to probes'
tables in the sweep's results (`Probe.summary`).

`virtual_mass` (objective vava): how much of each frame's transport mass a VAVA run's virtual frame takes, on
background and on procedure frames (docs/method.md#virtual-mass-diagnostic), and how often the transport plan
matches a frame to one of its own phase (docs/evaluation.md#alignment-accuracy).
"""
from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vava.core.embeddings_file import EMBEDDINGS_NAME, UNLABELLED, VideoEmbeddings, load_embeddings
from vava.core.errors import VavaError
from vava.core.files import atomic_write, read_regular
from vava.core.records import BACKGROUND_KINDS
from vava.core.run_folder import CONFIG_NAME, VIRTUAL_MASS_NAME, checkpoint_path, load_checkpoint, load_into
from vava.stages.evaluate.probes.alignment import background_kind, side_mean
from vava.stages.evaluate.probes.base import Metric
from vava.stages.train.config import TrainConfig, load_config
from vava.stages.train.objectives import build_objective
from vava.stages.train.objectives.vava import VavaLoss, unmatched_share, vava_pair_terms

MAX_PAIRS_PER_ACTION = 20


def virtual_mass(run_dir: str | Path) -> dict[str, Any] | None:
    """{"background", "procedure", "pairs", "alignment", "alignment_background"} of a VAVA run, also written to
    RUN/virtual_mass.json; None for another objective.

    For ordered pairs of val videos of the same action (the first MAX_PAIRS_PER_ACTION per action, all frames),
    the plan at the embeddings' step gives each real frame's share of mass on the virtual frame
    (`unmatched_share`, rows and columns); background and procedure are the means over background frames
    (null when there are none) and over the other frames. The plan also matches each real frame to the frame
    (or the virtual frame) that gets most of its mass: `alignment` is the accuracy of these matches
    (`plan_frame_scores`) over both sides of the pairs, `alignment_background` the same on each kind of
    background frame.
    """
    run_dir = Path(run_dir)
    embeddings = load_embeddings(run_dir / EMBEDDINGS_NAME)
    if embeddings.attrs.get("objective") != "vava":
        return None
    config = _run_config(run_dir)
    loss = _objective(run_dir, config)
    step = int(embeddings.attrs.get("step", config.steps))
    shares, background, sides = [], [], []
    pairs = 0
    for action in embeddings.actions():
        videos = [v for v in embeddings.split("val") if v.action == action]
        kinds = {v.id: background_kind(v) for v in videos}  # -1 for frames that are not background
        for first, second in itertools.islice(itertools.permutations(videos, 2), MAX_PAIRS_PER_ACTION):
            plan = _plan(first, second, step, loss)
            shares += [share.numpy() for share in unmatched_share(plan)]
            background += [kinds[first.id] >= 0, kinds[second.id] >= 0]
            sides += [(plan_frame_scores(plan[1:].numpy(), first.labels, second.labels, kinds[first.id] >= 0),
                       kinds[first.id]),
                      (plan_frame_scores(plan[:, 1:].T.numpy(), second.labels, first.labels, kinds[second.id] >= 0),
                       kinds[second.id])]
            pairs += 1
    share = np.concatenate(shares) if shares else np.zeros(0)
    is_background = np.concatenate(background) if background else np.zeros(0, dtype=bool)
    result = {"background": _mean(share[is_background]), "procedure": _mean(share[~is_background]), "pairs": pairs,
              "alignment": side_mean(sides),
              "alignment_background": {kind: side_mean(sides, bit) for kind, bit in BACKGROUND_KINDS.items()}}
    atomic_write(run_dir / VIRTUAL_MASS_NAME, json.dumps(result, indent=2) + "\n")
    return result


def _run_config(run_dir: Path) -> TrainConfig:
    path = run_dir / CONFIG_NAME
    if not path.is_file():
        raise VavaError(f"{path}: no such file (virtual_mass needs the run's training config)")
    return load_config(str(path), {})


def _objective(run_dir: Path, config: TrainConfig) -> VavaLoss:
    """The run's VAVA loss; a learned prior-width head gets its trained weights from the last checkpoint."""
    loss = build_objective("vava", config.loss)
    if loss.width_head is not None:
        state = load_checkpoint(checkpoint_path(run_dir))
        load_into(loss, state["objective"], state["path"], "objective")
    return loss.double().eval()


@torch.no_grad()
def _plan(first: VideoEmbeddings, second: VideoEmbeddings, step: int, loss: VavaLoss) -> torch.Tensor:
    """The [N + 1, M + 1] plan between two videos (float64): row and column 0 the virtual frame."""
    x, y = (torch.from_numpy(v.embeddings).double()[None] for v in (first, second))
    sigma = None if loss.width_head is None else loss.width_head(x, y)
    return vava_pair_terms(x, y, step, loss.config, sigma)["plan"][0]


def plan_frame_scores(rows: np.ndarray, labels: np.ndarray, partner_labels: np.ndarray,
                      background: np.ndarray) -> np.ndarray:
    """(N,) 1 where the plan's rows [N, M + 1] (column 0 virtual) give a frame (`labels`, `background`) its
    largest mass on a frame of the other video (`partner_labels`) with its label, or on the virtual frame
    when it is background; else 0; NaN for an unlabelled frame or one matched to an unlabelled frame."""
    match = rows.argmax(axis=1)
    virtual = match == 0
    partner = partner_labels[np.maximum(match - 1, 0)]
    known = (labels != UNLABELLED) & (virtual | (partner != UNLABELLED))
    right = np.where(virtual, background, labels == partner)
    return np.where(known, right.astype(np.float64), np.nan)


def _mean(values: np.ndarray) -> float | None:
    return float(values.mean()) if values.size else None


@dataclass(frozen=True)
class Diagnostic:
    """A post-run diagnostic: `run(RUN)` writes RUN/`file` (a JSON object); `metrics` adds numbers of that file
    to the sweep tables of probes, by probe name (`Probe.summary`), after the probe's own columns."""

    file: str
    run: Callable[[Path], object]
    metrics: Mapping[str, tuple[Metric, ...]]

    def read(self, run_dir: Path | None) -> dict[str, Any]:
        """RUN/`file` ({} for no run, or when the file is missing or damaged)."""
        try:
            found = json.loads(read_regular(run_dir / self.file)) if run_dir is not None else None
        except (OSError, ValueError, VavaError):
            return {}
        return found if isinstance(found, dict) else {}


VIRTUAL_MASS = Diagnostic(VIRTUAL_MASS_NAME, virtual_mass, {
    "targeted": (Metric("Virtual mass: background", ("background",)),
                 Metric("Virtual mass: procedure", ("procedure",))),
    "alignment": (Metric("Plan (VAVA)", ("alignment",)),
                  *(Metric(f"Plan, {kind} bg", ("alignment_background", kind)) for kind in BACKGROUND_KINDS))})

# Objective name (a key of `OBJECTIVES`) -> the diagnostic of its runs. A new one is a Diagnostic and one entry.
DIAGNOSTICS: dict[str, Diagnostic] = {"vava": VIRTUAL_MASS}


def diagnose(run_dir: Path, objective: str | None) -> None:
    """Run the diagnostic of `objective` (None: a reference row) on the run, if it has one."""
    if objective in DIAGNOSTICS:
        DIAGNOSTICS[objective].run(run_dir)


__all__ = ["DIAGNOSTICS", "MAX_PAIRS_PER_ACTION", "Diagnostic", "diagnose", "plan_frame_scores",
           "virtual_mass"]
