"""Stage 2: the training loop (embedder + objective on cached features), with resumable runs.

A run folder holds `config.yaml` (the resolved config), `run.json` (the absolute path and
fingerprint of the feature set trained on), `checkpoints/` (`step_N.pt`, `last.pt`; `best.pt`
with `eval_every`), `train_log.csv` (step, then the loss and every loss component as means over the
steps since the previous line, the learning rate, steps/s),
`eval_log.csv` (with `eval_every`: step, every score, seconds) and the lock file of
`vava.core.run_folder`. Every file is written by create-and-rename (`vava.core.files`).

Under `torchrun` every rank trains on its part of each step's pairs (`config.data.batch_pairs` stays the
global batch) through DistributedDataParallel, and the update equals the single-process one
(`vava.stages.train.distributed`). Rank 0 alone locks the run folder and writes it; every rank resumes
from the same checkpoint.
"""
from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import torch
import yaml
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm

from vava.cache.inspect import require_complete
from vava.cache.store import CachedVideo, FeatureSet
from vava.core.config import from_dict, to_dict
from vava.core.devices import resolve_device
from vava.core.distributed import Ranks, barrier, local_device, process_group
from vava.core.embedder import Embedder
from vava.core.errors import VavaError, option_name
from vava.core.files import atomic_write
from vava.core.run_folder import (
    BOOKKEEPING_NAMES,
    CHECKPOINTS,
    CONFIG_NAME,
    LAST,
    LOG_NAME,
    RUN_INFO_NAME,
    SCHEDULE_KEYS,
    check_run_folder,
    load_checkpoint,
    load_into,
    locked_run,
    save_checkpoint,
)
from vava.core.staged_run import publish
from vava.stages.train.config import TrainConfig
from vava.stages.train.data import (
    Context,
    PhaseClasses,
    batches,
    channel_statistics,
    check_step_fits,
    choose_data_path,
    split_bytes,
)
from vava.stages.train.distributed import agree, global_batchnorm, share_random_state
from vava.stages.train.estimate import StepClock
from vava.stages.train.evaluation import Evaluator, Validation, check_evaluator, evaluation_due
from vava.stages.train.logs import CsvLog, open_tensorboard
from vava.stages.train.objectives import OBJECTIVES, build_config, build_objective
from vava.stages.train.sampler import PairSampler
from vava.stages.train.step import TrainStep

# Keys that may differ when a run is resumed: how long it runs, how often it logs, saves and evaluates.
RESUMABLE_CHANGES = SCHEDULE_KEYS


@dataclass
class TrainSummary:
    run_dir: Path
    start_step: int
    steps: int
    loss: float
    seconds: float
    data_path: str
    best: tuple[str, float, int] | None = None  # with eval_every: the metric, its best score and that step


def resolved(config: TrainConfig, derived: dict[str, Any] | None = None) -> TrainConfig:
    """`config` with the objective's options filled in with their defaults (checked).

    The objective derives what it reads from the rest of the config (`Objective.derive`, e.g. VAVA's
    budget phi schedule its `total_steps`). Options that depend on the model or the data, by name (a
    head's `embedding_dim`, the `num_classes` of a classifier), take their value from the model and
    `derived` unless set explicitly.
    """
    objective = OBJECTIVES.get(config.objective)
    options = dict(config.loss) if objective is None else objective.derive(config)
    if objective is not None:
        names = {f.name for f in dataclasses.fields(objective.config_class)}
        for key, value in {"embedding_dim": config.model.embedding_dim, **(derived or {})}.items():
            if key in names:
                options.setdefault(key, value)
    return dataclasses.replace(config, loss=dataclasses.asdict(build_config(config.objective, options)))


class _Plan(NamedTuple):
    """What `train` checked before touching the run folder, and trains with."""

    run_dir: Path
    feature_set: FeatureSet
    videos: list[CachedVideo]
    sampler: PairSampler
    context: Context
    classes: PhaseClasses
    config: TrainConfig


def train(features: str | Path, out: str | Path, config: TrainConfig, *, device: str = "auto",
          resume: bool = False, force: bool = False, progress: bool = True,
          allow_partial: bool = False, evaluator: Evaluator | None = None) -> TrainSummary:
    """Train the embedder with `config.objective` on the train split of a feature set.

    `out` is a new or empty folder or a run folder (to `resume`, or one whose run saved no
    checkpoint); any other folder needs `force`. The folder is locked while training. A feature
    set missing some of its videos is refused unless `allow_partial`. With `config.eval_every`,
    `evaluator` scores the embedder every that many steps (`vava.stages.train.evaluation`).
    Under torchrun every rank calls this; a check that fails on one rank stops all of them.
    """
    torch_device = resolve_device(device)
    with process_group(torch_device) as ranks:
        torch_device = local_device(torch_device, ranks)
        plan = agree(lambda: _prepare(features, out, config, force, allow_partial, evaluator, torch_device, ranks))
        with contextlib.ExitStack() as held:
            def claim() -> dict[str, Any] | None:
                if ranks.is_main:  # the other ranks write nothing: a lock per rank would only block them
                    held.enter_context(locked_run(plan.run_dir, "out"))
                return _start_state(plan.run_dir, plan.config, plan.feature_set, resume)

            state = agree(claim)
            return _fit(*plan, state, torch_device, progress and ranks.is_main, evaluator, ranks)


def _prepare(features: str | Path, out: str | Path, config: TrainConfig, force: bool, allow_partial: bool,
             evaluator: Evaluator | None, torch_device: torch.device, ranks: Ranks) -> _Plan:
    """Everything `train` checks before it touches the run folder, and what it trains with."""
    check_evaluator(config, evaluator)
    run_dir = _check_out(Path(out), force)
    feature_set = FeatureSet.open(features)
    require_complete(feature_set, allow_partial)
    videos = [v for v in feature_set.videos() if v.split == "train"]
    if config.data.actions:
        known = sorted({v.action for v in videos})
        unknown = [a for a in config.data.actions if a not in known]
        if unknown:
            raise VavaError(f"data.actions: {feature_set.path} has no train video of action {unknown[0]!r} "
                            f"(its actions: {', '.join(known)})")
        videos = [v for v in videos if v.action in config.data.actions]
    if not videos:
        raise VavaError(f"{feature_set.path}: no complete video in the train split")
    classes = PhaseClasses.of(feature_set, videos)
    objective = OBJECTIVES.get(config.objective)
    if objective is not None and objective.uses_labels and classes.count == 0:
        raise VavaError(f"{feature_set.path}: objective {config.objective} needs phase labels, but the train split "
                        "has no labels (every frame is -1); pick a self-supervised objective such as vava")
    config = resolved(config, {"num_classes": classes.count})
    check_step_fits(feature_set.frame_shape(videos[0].id), config, torch_device)
    sampler = PairSampler(videos, config.data.batch_pairs, config.data.frames_per_video, config.seed, ranks)
    context = Context.of(config.model, videos)
    return _Plan(run_dir, feature_set, videos, sampler, context, classes, config)


def _check_out(run_dir: Path, force: bool) -> Path:
    """`run_dir` unless it is a folder with files that are not a run's (training would replace some)."""
    check_run_folder(run_dir, "out")
    if run_dir.is_dir() and not (run_dir / RUN_INFO_NAME).is_file():
        check_out_names(run_dir, {path.name for path in run_dir.iterdir()} - BOOKKEEPING_NAMES, force)
    return run_dir


def check_out_names(out: object, names: set[str], force: bool) -> None:
    """Refuse training into `out` (a folder, or a URL) holding `names` unless it is empty, a run or `force`."""
    if names and RUN_INFO_NAME not in names and not force:
        raise VavaError(f"{option_name('out')}: {out} is not empty and is not a run folder (no {RUN_INFO_NAME}); "
                        f"pick a new folder, or pass {option_name('force')} to train into it anyway")


def _fit(run_dir: Path, feature_set: FeatureSet, videos: list[CachedVideo], sampler: PairSampler, context: Context,
         classes: PhaseClasses, config: TrainConfig, state: dict[str, Any] | None, torch_device: torch.device,
         progress: bool, evaluator: Evaluator | None, ranks: Ranks) -> TrainSummary:
    """The training loop from `state` (a checkpoint, or None for a new run) to `config.steps`; rank 0 alone
    writes the run folder, the other ranks wait for its checkpoints and evaluations at a barrier."""
    checkpoints = run_dir / CHECKPOINTS
    start = state["step"] if state else 0
    if start >= config.steps:
        raise VavaError(f"{option_name('steps')}: the run is already at step {start}; ask for more steps to continue")
    features = str(feature_set.path.resolve())  # absolute: the run works from any working directory
    main = ranks.is_main
    if main:  # config.yaml is a loadable preset itself (`--config RUN/config.yaml`); the data it ran on goes beside it
        atomic_write(run_dir / CONFIG_NAME, yaml.safe_dump(to_dict(config), sort_keys=False))
        atomic_write(run_dir / RUN_INFO_NAME, json.dumps({"features": features,
                                                          "fingerprint": feature_set.fingerprint}, indent=2) + "\n")

    frame_shape = feature_set.frame_shape(videos[0].id)
    in_channels = frame_shape[0]
    torch.manual_seed(config.seed)
    embedder = Embedder(in_channels, config.model)
    if config.model.standardize and not state:
        embedder.set_input_statistics(*channel_statistics(feature_set, videos))
    objective = build_objective(config.objective, config.loss)
    if ranks.distributed:  # BatchNorm over the global batch keeps the single-process statistics
        embedder, objective = global_batchnorm(embedder), global_batchnorm(objective)
    embedder, objective = embedder.to(torch_device), objective.to(torch_device)
    parameters = [*embedder.parameters(), *objective.parameters()]
    optimizer = torch.optim.Adam(parameters, lr=config.optim.lr, weight_decay=config.optim.weight_decay)
    if state:
        for key, target in (("embedder", embedder), ("objective", objective), ("optimizer", optimizer)):
            load_into(target, state[key], state["path"], key)
        torch.set_rng_state(state["rng"])
    model: torch.nn.Module = TrainStep(embedder, objective, config.amp and torch_device.type == "cuda")
    if ranks.distributed:
        model = DistributedDataParallel(model)

    data_path = choose_data_path(config.data.path, split_bytes(feature_set, videos), torch_device)
    stream = batches(feature_set, videos, sampler, data_path, context, classes, start, config.steps, torch_device,
                     config.data.workers)
    meta = {"features": features, "fingerprint": feature_set.fingerprint, "in_channels": in_channels,
            "frame_shape": list(frame_shape)}
    tensorboard = open_tensorboard(run_dir) if config.tensorboard and main else None
    log = CsvLog(run_dir / LOG_NAME, start, "training log", tensorboard, "train") if main else None
    validation = Validation(evaluator, config, run_dir, start, tensorboard) if config.eval_every and main else None
    actions = {v.action for v in videos}  # those trained on (`data.actions`)
    scored = [v for v in feature_set.videos() if v.split in ("train", "val") and v.action in actions]
    bar = tqdm(total=config.steps, initial=start, unit="step", desc=f"train {config.objective}", file=sys.stderr,
               disable=not progress, dynamic_ncols=True)
    began, loss_value, step = time.perf_counter(), float("nan"), start
    window_start, window_steps, window = began, 0, {}  # sums of the logged values since the last log line
    clock = StepClock(start, config.steps, torch_device)
    embedder.train()
    objective.train()
    try:
        for step, batch in zip(range(start, config.steps), stream):
            loss, components = model(batch, step)  # the global batch's loss, the same on every rank
            loss_value = float(loss.detach())
            if not math.isfinite(loss_value):
                parts = ", ".join(f"{k}={float(v):.4g}" for k, v in components.items())
                last = checkpoints / LAST
                raise VavaError(f"step {step}: loss is {loss_value} ({parts}); training stopped, last good checkpoint: "
                                f"{last if last.exists() else 'none'}")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            for group in optimizer.param_groups:
                group["lr"] = config.optim.lr_at(step, config.steps)
            optimizer.step()
            done, window_steps = step + 1, window_steps + 1
            for key, value in {"loss": loss_value, **{k: float(v) for k, v in components.items()}}.items():
                window[key] = window.get(key, 0.0) + value
            bar.update(1)
            for line in clock.tick(done) if main else ():  # printed even without a progress bar: it may say to stop
                tqdm.write(line, file=sys.stderr)
            if main and (done % config.log_every == 0 or done == config.steps):
                now = time.perf_counter()
                log.write({"step": done, **{k: v / window_steps for k, v in window.items()},
                           "lr": optimizer.param_groups[0]["lr"], "steps_per_s": window_steps / (now - window_start)})
                window_start, window_steps, window = now, 0, {}
                bar.set_postfix(loss=f"{loss_value:.4g}")
            evaluating = evaluation_due(config, done)
            scores, best = validation.score(embedder, feature_set, scored, done) if validation and evaluating \
                else ({}, False)
            saving = done % config.checkpoint_every == 0 or done == config.steps or best
            if main and saving:
                save_checkpoint(checkpoints, done, to_dict(config), {
                    **meta, "embedder": embedder.state_dict(), "objective": objective.state_dict(),
                    "optimizer": optimizer.state_dict(), "rng": torch.get_rng_state(),
                    **({"eval": scores} if scores else {})}, best=best)
                publish(run_dir)  # a run folder in object storage gets each checkpoint (and the logs up to it)
            if evaluating:  # an evaluation may draw random numbers on rank 0 alone
                share_random_state()
            if evaluating or saving:
                barrier()
    finally:
        bar.close()
        for closing in (log, validation, tensorboard):
            if closing is not None:
                closing.close()
    best = (config.eval_metric, validation.best, validation.best_step) if validation and validation.best_step else None
    return TrainSummary(run_dir, start, config.steps, loss_value, time.perf_counter() - began, data_path, best)


def _start_state(run_dir: Path, config: TrainConfig, feature_set: FeatureSet, resume: bool) -> dict[str, Any] | None:
    """The checkpoint to continue from (with `resume`), after checking it belongs to this run."""
    checkpoints = run_dir / CHECKPOINTS
    has_checkpoint = (checkpoints / LAST).is_file()
    if not resume:
        if has_checkpoint:
            raise VavaError(f"{option_name('out')}: {run_dir} already holds a run; pass {option_name('resume')} to "
                            "continue it or pick a new folder")
        return None
    if not has_checkpoint:
        raise VavaError(f"{option_name('resume')}: no checkpoint in {checkpoints}")
    state = load_checkpoint(checkpoints / LAST)
    saved = to_dict(_saved_config(state))
    allowed = resumable_changes(saved)
    changed = sorted(k for k, v in to_dict(config).items() if saved[k] != v and k not in allowed)
    if changed:
        reason = "; optim.schedule is not constant: the learning rate of every step depends on steps" \
            if "steps" in changed and len(changed) == 1 else ""
        raise VavaError(f"{option_name('resume')}: config differs from the saved run in {', '.join(changed)} "
                        f"(only {', '.join(sorted(allowed))} may change{reason}); train a new run instead")
    if state["fingerprint"] != feature_set.fingerprint:
        raise VavaError(f"{option_name('resume')}: the run was trained on feature set {state['fingerprint']}, "
                        f"not {feature_set.fingerprint}")
    return state


def resumable_changes(config: dict[str, Any]) -> frozenset[str]:
    """The config keys a resumed run may change (`config`: its saved config as a dict). `steps` only under a
    constant learning rate: a schedule over the run's length (cosine) would give the steps already taken
    other rates than the longer run's, so the result would not be the run its config describes."""
    if config.get("optim", {}).get("schedule", "constant") == "constant":
        return RESUMABLE_CHANGES
    return RESUMABLE_CHANGES - {"steps"}


def _saved_config(state: dict[str, Any]) -> TrainConfig:
    """A checkpoint's config as a `TrainConfig`; one line naming the checkpoint if it is not one."""
    try:
        return from_dict(TrainConfig, state["config"])
    except VavaError as err:
        raise VavaError(f"{state['path']}: config: {err}") from None
