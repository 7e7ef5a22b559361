"""The run-folder artefact: its layout, its lock, its checkpoints and the trained embedder in it.

This module is the only place that knows a run folder's layout (every file name below is a constant
here, or in the artefact module named beside it)::

    RUN/config.yaml       the resolved training config (itself loadable with `--config`)
    RUN/run.json          the feature set the run was trained on (absolute path and fingerprint)
    RUN/checkpoints/      step_<N>.pt, last.pt (a second name of the newest step) and, when training
                          evaluates (`eval_every`), best.pt (a second name of the best step so far)
    RUN/train_log.csv     one row per logged step
    RUN/eval_log.csv      one row per evaluation during training
    RUN/.eval-embeddings.h5  scratch file of the evaluation during training (removed after each)
    RUN/tensorboard/      TensorBoard events of training (config `tensorboard`)
    RUN/embeddings.h5     written by `vava embed` (see `vava.core.embeddings_file`)
    RUN/report.json, report.md   written by `vava evaluate` (see `vava.core.report_file`)
    RUN/plots/            tsne.png, alignment.png, loss.png: written by `vava evaluate` (`vava sweep` writes loss.png)
    RUN/sweep_key.json, sweep_time.json   written by `vava sweep`: what the run is built for, and (last) its wall time
    RUN/virtual_mass.json `vava sweep`'s diagnostic of a VAVA run (`vava.pipeline.diagnostics`)
    RUN/.vava.lock        held by the one train, embed or evaluate process writing into the run
    RUN/.vava-sync.json, .vava-sync.lock   in the local copy of a run folder in object storage: what was
                          synced with it, and the lock of a sync (`vava.core.staged_run`)

Embeddings, reports and plots of a checkpoint other than last.pt carry its tag (`checkpoint_tag`)
in their names: embeddings-best.h5, report-step500.json, plots/tsne-best.png; so do the embeddings
of an identity kind written into a trained run (embeddings-identity-time.h5, `identity_tag`).

Checkpoints hold tensors, numbers, strings, lists and dicts only (the config as JSON text), so they
load with `torch.load(weights_only=True)`: a file whose pickle asks for anything else (a crafted
`last.pt` calling `os.system`) is refused before any of it runs. What loads is then checked key by
key, so a damaged or foreign file gives one line naming it, never a traceback. Stages get a trained
embedder only through `load_embedder`.
"""
from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import pickle
import re
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import yaml
from filelock import FileLock, Timeout

from vava.core.config import from_dict
from vava.core.embedder import Embedder, EmbedderConfig
from vava.core.errors import VavaError, option_name, quoted
from vava.core.files import atomic_path, atomic_write, is_inside, read_regular
from vava.core.validation import option_error

CONFIG_NAME = "config.yaml"
RUN_INFO_NAME = "run.json"
LOG_NAME = "train_log.csv"
CHECKPOINTS = "checkpoints"
LAST = "last.pt"
BEST = "best.pt"
EVAL_LOG_NAME = "eval_log.csv"
# Config keys that may differ between the checkpoints of one run: a resumed run may change them.
SCHEDULE_KEYS = frozenset({"steps", "checkpoint_every", "log_every", "eval_every"})
LOCK_NAME = ".vava.lock"
SYNC_MANIFEST_NAME = ".vava-sync.json"
SYNC_LOCK_NAME = ".vava-sync.lock"
BOOKKEEPING_NAMES = frozenset({LOCK_NAME, SYNC_MANIFEST_NAME, SYNC_LOCK_NAME})  # none of them make a folder a run
SCRATCH_NAME = ".eval-embeddings.h5"  # where an evaluator may write the embeddings it scores (then removes them)
PLOTS = "plots"
TENSORBOARD = "tensorboard"
# Subfolders the stages write into; a symlink there would carry their files out of the run.
SUBFOLDERS = (CHECKPOINTS, PLOTS, TENSORBOARD)
# The plots in PLOTS (named for a checkpoint's tag by `tagged_name`).
TSNE_PLOT_NAME = "tsne.png"
ALIGNMENT_PLOT_NAME = "alignment.png"
LOSS_PLOT_NAME = "loss.png"
# Files `vava sweep` writes into the run folders it builds.
KEY_NAME = "sweep_key.json"    # what a run folder is built for
TIME_NAME = "sweep_time.json"  # seconds a run took, written last: the run is finished
VIRTUAL_MASS_NAME = "virtual_mass.json"


def check_run_folder(run_dir: str | Path, key: str) -> Path:
    """`run_dir` if it is usable as a run folder (it may not exist yet); otherwise a `ConfigError` on option `key`
    (the one that gave it: "out", "run").

    Refused: a symlink in place of the folder, something that is not a folder, and a subfolder the
    stages write into that is a symlink leading out of the run or is not a folder.
    """
    run_dir = Path(run_dir)
    if run_dir.is_symlink():
        raise option_error(key, f"{run_dir} is a symlink (to {run_dir.readlink()}); give the real folder")
    if run_dir.exists() and not run_dir.is_dir():
        raise option_error(key, f"{run_dir} is not a folder")
    for name in SUBFOLDERS:
        sub = run_dir / name
        if sub.is_symlink() and not is_inside(sub, run_dir):
            raise option_error(key, f"{sub} is a symlink to {sub.readlink()}, outside the run folder; remove it")
        if sub.exists() and not sub.is_dir():
            raise option_error(key, f"{sub} is a file, where the run keeps a folder; move it away")
    return run_dir


@contextlib.contextmanager
def locked_run(run_dir: str | Path, key: str, *, create: bool = True) -> Iterator[Path]:
    """Check `run_dir`, create it, and hold its lock for the block; fail at once if another process holds it
    (errors name option `key`, as `check_run_folder`'s).

    Without `create`, a missing folder is neither created nor locked: the stage then fails on its
    missing inputs, with its own message.
    """
    run_dir = check_run_folder(run_dir, key)
    if not create and not run_dir.is_dir():
        yield run_dir
        return
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise option_error(key, f"cannot create {run_dir} ({err.strerror or err})") from None
    try:
        held = FileLock(run_dir / LOCK_NAME).acquire(blocking=False)
    except Timeout:
        raise option_error(key, f"{run_dir} is in use by another vava process (train, embed or evaluate); "
                        "wait for it to finish") from None
    except OSError as err:
        raise option_error(key, f"cannot lock {run_dir} ({err.strerror or err})") from None
    with held:
        yield run_dir


# -- checkpoints ---------------------------------------------------------------------------
_STEP_FILE = re.compile(r"step_(\d+)\.pt")
# Every key of a checkpoint and its type; `config` is JSON text (a dict in checkpoints older than that).
_FIELDS: dict[str, type | tuple[type, ...]] = {
    "step": int, "config": (str, dict), "features": str, "fingerprint": str, "in_channels": int,
    "embedder": dict, "objective": dict, "optimizer": dict, "rng": torch.Tensor,
}
# How torch's restricted unpickler names a callable (or class) it refused to load.
_REFUSED_GLOBAL = re.compile(r"GLOBAL (\S+)")
_log = logging.getLogger(__name__)


def save_checkpoint(folder: Path, step: int, config: dict[str, Any], state: dict[str, Any],
                    best: bool = False) -> Path:
    """Write `step_<N>.pt`, then `last.pt` (and `best.pt` with `best`) as a second name of the same bytes,
    each by create-and-rename.

    `state` holds the other keys of `_FIELDS` (and optionally `eval`, the scores of the step, and `frame_shape`,
    the (C, H, W) of the maps trained on); a full
    disk is a one-line `VavaError` that leaves the previous checkpoints as they were.
    """
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"step_{step:07d}.pt"
    buffer = io.BytesIO()  # serialised in memory, so a failed write is an OSError of ours, not torch's
    torch.save({**state, "step": step, "config": json.dumps(config)}, buffer)
    atomic_write(path, buffer.getvalue())
    for name in (LAST, BEST) if best else (LAST,):
        with atomic_path(folder / name) as tmp:
            tmp.unlink()  # a second name for the step's bytes, swapped in atomically
            os.link(path, tmp)
    return path


def load_checkpoint(path: Path) -> dict[str, Any]:
    """The checkpoint at `path` (a file, or a run's checkpoints folder for its `last.pt`), checked.

    The result has the keys of `_FIELDS`, with `config` a dict, plus `model` (the embedder's
    `EmbedderConfig`, checked) and `path`: the file read.
    An unreadable `last.pt` falls back, with a warning, to the newest readable `step_<N>.pt`.
    """
    path = Path(path)
    if path.is_dir():
        path = path / LAST
    if not path.is_file():
        raise VavaError(f"{path}: no checkpoint (train first, or check the run folder)")
    try:
        return _read(path)
    except VavaError as err:
        fallback = _newest_readable_step(path.parent) if path.name == LAST else None
        if fallback is None:
            raise
        _log.warning("warning: %s; using %s instead", err, fallback["path"])
        return fallback


def load_into(target: torch.nn.Module | torch.optim.Optimizer, state: dict[str, Any], checkpoint: Path,
              key: str) -> None:
    """`target.load_state_dict(state)`; a state that does not fit is one line naming the checkpoint."""
    try:
        target.load_state_dict(state)
    except (RuntimeError, ValueError, KeyError, TypeError) as err:
        detail = " ".join(str(err).split())
        raise VavaError(f"{checkpoint}: its {key} does not fit the model of its config ({detail[:300]})") from None


def _newest_readable_step(folder: Path) -> dict[str, Any] | None:
    for candidate in reversed(saved_steps(folder).values()):
        with contextlib.suppress(VavaError):
            return _read(candidate)
    return None


def _read(path: Path) -> dict[str, Any]:
    try:
        with warnings.catch_warnings():  # torch warns about a plain pickle's protocol before refusing it
            warnings.simplefilter("ignore", UserWarning)
            state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        if refused := _REFUSED_GLOBAL.search(str(err)):
            raise VavaError(f"{path}: refused: it asks to load {refused[1]}, which is neither a tensor nor a plain "
                            "value (a crafted or foreign file; nothing in it was run)") from None
        raise VavaError(f"{path}: not a readable checkpoint (damaged or not a torch file)") from None
    except Exception as err:  # a truncated or foreign file: any torch error means the same to a user
        reason = (str(err).splitlines() or [""])[0].split(". ")[0]  # torch appends paragraphs of advice
        raise VavaError(f"{path}: not a readable checkpoint (damaged or not a torch file; "
                        f"{type(err).__name__}: {reason})") from None
    return _checked(path, state)


def _checked(path: Path, state: object) -> dict[str, Any]:
    """`state` with its types checked and its model config parsed; `VavaError` naming `path` otherwise.

    The rest of the config is the training stage's to check (`vava.stages.train.config`).
    """
    if not isinstance(state, dict):
        raise VavaError(f"{path}: not a vava checkpoint (holds a {type(state).__name__}, not a dict)")
    missing = [key for key in _FIELDS if key not in state]
    if missing:
        raise VavaError(f"{path}: not a vava checkpoint (no {', '.join(missing)})")
    for key, kind in _FIELDS.items():
        if not isinstance(state[key], kind) or isinstance(state[key], bool):
            raise VavaError(f"{path}: {key} is a {type(state[key]).__name__}, not a valid value")
    for key in ("embedder", "objective"):
        if not all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state[key].items()):
            raise VavaError(f"{path}: {key} is not a state dict of named tensors")
    shape = state.get("frame_shape")  # (C, H, W) of the maps trained on; older checkpoints lack it
    if shape is not None and not (isinstance(shape, list) and len(shape) == 3 and all(
            isinstance(n, int) and not isinstance(n, bool) and n > 0 for n in shape)):
        raise VavaError(f"{path}: frame_shape is {quoted(shape)}, not three positive integers")
    rng, expected = state["rng"], torch.get_rng_state()
    if state["step"] < 0 or state["in_channels"] < 1 or rng.dtype != expected.dtype or rng.shape != expected.shape:
        raise VavaError(f"{path}: step {state['step']}, in_channels {state['in_channels']} or the rng state "
                        "is out of range")
    try:
        raw = state["config"]
        config = json.loads(raw) if isinstance(raw, str) else raw
        if not isinstance(config, dict) or not isinstance(config.get("objective", ""), str):
            raise VavaError(f"expected a mapping (with a string objective), got {str(config)[:80]}")
        model = from_dict(EmbedderConfig, config.get("model", {}), "model.")
    except (ValueError, VavaError) as err:
        raise VavaError(f"{path}: config: {err}") from None
    return {**state, "config": config, "model": model, "path": path}


# -- the trained embedder -----------------------------------------------------------------------
@dataclass(frozen=True)
class TrainedEmbedder:
    """A run's trained embedder as its last checkpoint holds it; `build` makes the network."""

    checkpoint: dict[str, Any]  # as `load_checkpoint` returns it

    @property
    def model(self) -> EmbedderConfig:
        """The embedder's config (sizes, input context and standardisation)."""
        return self.checkpoint["model"]

    @property
    def features(self) -> str:
        """The feature set the run was trained on (absolute path)."""
        return self.checkpoint["features"]

    def check_maps(self, shape: tuple[int, int, int] | None, feature_set: str | Path) -> None:
        """`VavaError` unless a feature set's maps, (C, H, W) (None: no video), are what the embedder was trained
        on: its channel count and, where the checkpoint records it, the map size (another --image-size)."""
        if shape is None:
            return
        if shape[0] != self.checkpoint["in_channels"]:
            raise VavaError(f"{option_name('features')}: {feature_set} has {shape[0]} channels, "
                            f"the run was trained on {self.checkpoint['in_channels']}")
        trained = self.checkpoint.get("frame_shape")
        if trained is not None and tuple(trained) != tuple(shape):
            size = "x".join(map(str, shape))
            raise VavaError(f"{option_name('features')}: {feature_set} holds {size} maps per frame, the run was "
                            f"trained on {'x'.join(map(str, trained))} (features of another "
                            f"{option_name('image_size')}); extract the videos "
                            "with the options of the run's feature set")

    def build(self, device: torch.device) -> Embedder:
        """The trained network on `device`, in eval mode."""
        embedder = Embedder(self.checkpoint["in_channels"], self.checkpoint["model"])
        load_into(embedder, self.checkpoint["embedder"], self.checkpoint["path"], "embedder")
        return embedder.to(device).eval()


def checkpoint_path(run_dir: str | Path) -> Path:
    """Where a run's newest checkpoint (`last.pt`) is."""
    return Path(run_dir) / CHECKPOINTS / LAST


def saved_steps(folder: Path) -> dict[int, Path]:
    """The `step_<N>.pt` files of a checkpoints folder, by step, in step order."""
    found = ((int(m[1]), p) for p in folder.glob("step_*.pt") if (m := _STEP_FILE.fullmatch(p.name)))
    return dict(sorted(found))


def checkpoint_tag(which: str) -> str:
    """What the outputs of checkpoint `which` carry in their names: "" for last (the plain names), "best",
    "step<N>" for a step, the file's stem for a path (characters outside [A-Za-z0-9._-] become _)."""
    if which == "last":
        return ""
    if which == "best":
        return "best"
    if which.isdigit():
        return f"step{int(which)}"
    return re.sub(r"[^A-Za-z0-9._-]", "_", Path(which).stem) or "checkpoint"


def identity_tag(kind: str) -> str:
    """The tag of the embeddings of identity `kind` written into a trained run (whose plain names are its
    embedder's): identity-<kind>, which `--checkpoint identity-<kind>` names again (`checkpoint_tag`)."""
    return f"identity-{kind}"


def tagged_name(name: str, tag: str) -> str:
    """`name` of an output for a checkpoint's tag: embeddings.h5 -> embeddings-best.h5 (unchanged for "")."""
    if not tag:
        return name
    stem, dot, suffix = name.partition(".")
    return f"{stem}-{tag}{dot}{suffix}"


def find_checkpoint(run_dir: str | Path, which: str = "last") -> Path:
    """The checkpoint file `which` names in a run: last, best, a saved step N, or a path to a checkpoint file.

    A path outside the run folder must hold a checkpoint of the same run (checked on loading, by
    `load_embedder`). Any other choice is a one-line `VavaError` that says what there is.
    """
    folder = Path(run_dir) / CHECKPOINTS
    if which == "last":
        return folder / LAST
    if which == "best":
        if not (folder / BEST).is_file():
            raise option_error("checkpoint", f"best: {folder} has no {BEST}; train with {option_name('eval_every')} "
                               "N to keep the best checkpoint by a validation metric")
        return folder / BEST
    if which.isdigit():
        steps = saved_steps(folder)
        if int(which) not in steps:
            saved = ", ".join(map(str, steps)) or "none"
            raise option_error("checkpoint", f"no checkpoint of step {int(which)} in {folder} (saved steps: {saved})")
        return steps[int(which)]
    path = Path(which)
    if not path.is_file():
        raise option_error("checkpoint", f"{which} is not last, best, a saved step or a checkpoint file")
    return path


def load_embedder(run_dir: str | Path, which: str = "last") -> TrainedEmbedder:
    """The trained embedder of a run's checkpoint `which` (see `find_checkpoint`; check its input with
    `check_maps`, then `build` it on a device)."""
    path = find_checkpoint(run_dir, which)
    state = load_checkpoint(path)
    if not is_inside(path, run_dir):
        _check_same_run(Path(run_dir), state)
    return TrainedEmbedder(state)


def _check_same_run(run_dir: Path, state: dict[str, Any]) -> None:
    """`VavaError` unless a checkpoint from outside the run folder was trained by that run: on its feature
    set (run.json) and with its config (config.yaml) up to the schedule keys."""
    where = f"{option_name('checkpoint')}: {state['path']} is not a checkpoint of run {run_dir}"
    try:
        info = json.loads(read_regular(run_dir / RUN_INFO_NAME))
        config = yaml.safe_load(read_regular(run_dir / CONFIG_NAME))
        fingerprint = info["fingerprint"]
    except (OSError, ValueError, KeyError, TypeError, yaml.YAMLError) as err:
        raise VavaError(f"{where} (its {RUN_INFO_NAME} or {CONFIG_NAME} cannot be read: {err})") from None
    if state["fingerprint"] != fingerprint:
        raise VavaError(f"{where} (trained on feature set {state['fingerprint']}, the run on {fingerprint})")
    if not isinstance(config, dict):
        raise VavaError(f"{where} (its {CONFIG_NAME} is not a mapping)")
    changed = sorted(k for k in {*config, *state["config"]} - SCHEDULE_KEYS if config.get(k) != state["config"].get(k))
    if changed:
        raise VavaError(f"{where} (its config differs in {', '.join(changed)})")
