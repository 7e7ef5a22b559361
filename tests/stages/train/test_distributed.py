"""Training under torchrun (stages/train/distributed.py, step.py, loop.py): BatchNorm over the global batch and
the gather's gradients against one process, one outcome for all ranks, and 2-process gloo runs whose loss curve,
resume and run folder are those of one process."""
from __future__ import annotations

import csv
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn

from tests.stages.train.helpers import TINY
from vava.cache.locks import FileLock
from vava.core.config import parse_overrides
from vava.core.errors import VavaError
from vava.core.run_folder import LOCK_NAME, load_checkpoint
from vava.stages.train.config import load_config
from vava.stages.train.distributed import GlobalBatchNorm, agree, gather_rows
from vava.stages.train.loop import train

pytestmark = pytest.mark.slow  # every test starts processes

WORLD = 2
# The 2-process curve differs from one process only by the order of float32 sums (gradients reduced
# across ranks, BatchNorm statistics combined from the ranks' halves); measured: at most 2e-7 relative.
TOLERANCE = 1e-5


def _reference_batchnorm(x: torch.Tensor, weights: torch.Tensor) -> dict[str, torch.Tensor]:
    """One process: BatchNorm3d over the whole batch, the gradients of sum(y * weights)."""
    bn = nn.BatchNorm3d(x.shape[1])
    x = x.clone().requires_grad_()
    y = bn(x)
    (y * weights).sum().backward()
    return {"y": y.detach(), "x_grad": x.grad, "weight_grad": bn.weight.grad, "bias_grad": bn.bias.grad,
            "running_mean": bn.running_mean, "running_var": bn.running_var}


def _worker(rank: int, store: str) -> None:
    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=WORLD)
    try:
        generator = torch.Generator().manual_seed(0)
        x = torch.randn(8, 3, 2, 4, 4, generator=generator) * 3 + 1
        weights = torch.randn(x.shape, generator=generator)
        expected = _reference_batchnorm(x, weights)
        block = slice(rank * 4, (rank + 1) * 4)
        bn = GlobalBatchNorm(3)
        mine = x[block].clone().requires_grad_()
        y = gather_rows(bn(mine))
        (y * weights).sum().backward()  # every rank's loss is the loss of the whole batch
        torch.testing.assert_close(y, expected["y"], rtol=1e-5, atol=1e-6)
        # the gather's backward sums the ranks' identical losses: WORLD x this block's gradient
        torch.testing.assert_close(mine.grad / WORLD, expected["x_grad"][block], rtol=1e-4, atol=1e-6)
        for name in ("weight", "bias"):  # what DistributedDataParallel then averages over the ranks
            grad = getattr(bn, name).grad.clone()
            dist.all_reduce(grad)
            torch.testing.assert_close(grad / WORLD, expected[f"{name}_grad"], rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(bn.running_mean, expected["running_mean"])
        torch.testing.assert_close(bn.running_var, expected["running_var"])

        def fails_on_rank_1() -> int:
            if rank == 1:
                raise VavaError("out: the run folder is locked")
            return 7

        with pytest.raises(VavaError) as stopped:
            agree(fails_on_rank_1)
        assert str(stopped.value) == ("out: the run folder is locked" if rank == 1 else
                                      "rank 1 stopped: out: the run folder is locked")
        assert agree(lambda: rank + 1) == rank + 1
    finally:
        dist.destroy_process_group()


def test_global_batchnorm_gather_and_agree_between_two_processes(tmp_path: Path) -> None:
    """Two gloo processes, each with half of a batch, against BatchNorm3d on the whole batch in one: the same
    outputs, input and parameter gradients (after the ranks' average) and running statistics; a check that fails
    on one rank fails on both, the other naming it."""
    mp.spawn(_worker, args=(str(tmp_path / "store"),), nprocs=WORLD)


# -- 2-process training with torchrun ----------------------------------------------------------------

CONFIG = [*TINY, "data.batch_pairs=4", "checkpoint_every=3"]  # 2 pairs per rank


def torchrun(*args: object) -> subprocess.CompletedProcess:
    """`vava ARGS` in 2 gloo processes started by torchrun."""
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={WORLD}",
               "-m", "vava.pipeline.cli", *map(str, args)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run(command, check=False, capture_output=True, text=True, timeout=300, env=env)


def train_with_torchrun(features: Path, run: Path, steps: int, *options: str) -> subprocess.CompletedProcess:
    sets = [item for value in CONFIG for item in ("--set", value)]
    done = torchrun("train", "--features", features, "--out", run, "--steps", steps, "--device", "cpu", "--quiet",
                    *sets, *options)
    assert done.returncode == 0, done.stderr
    return done


def losses(run: Path) -> list[tuple[int, float]]:
    with open(run / "train_log.csv", newline="") as handle:
        return [(int(row["step"]), float(row["loss"])) for row in csv.DictReader(handle)]


def files(run: Path) -> list[str]:
    return sorted(str(path.relative_to(run)) for path in run.rglob("*"))


def one_process(features: Path, run: Path, steps: int, *extra: str) -> list[tuple[int, float]]:
    train(features, run, load_config(None, parse_overrides([*CONFIG, f"steps={steps}", *extra])), device="cpu",
          progress=False)
    return losses(run)


def same_curve(got: list[tuple[int, float]], expected: list[tuple[int, float]]) -> None:
    assert [step for step, _ in got] == [step for step, _ in expected]
    assert [loss for _, loss in got] == pytest.approx([loss for _, loss in expected], rel=TOLERANCE)


def test_two_process_vava_run_and_its_resume_follow_the_single_process_curve(toy_features: Path,
                                                                             tmp_path: Path) -> None:
    """The global batch of 4 pairs split 2 + 2: VAVA's losses equal one process's; rank 0 alone printed and wrote
    (one log row per step, the files of a single-process run); resumed under torchrun, or in one process, the
    curve goes on as one uninterrupted single-process run."""
    single, run = tmp_path / "single", tmp_path / "run"
    expected = one_process(toy_features, single, 6)
    first = train_with_torchrun(toy_features, run, 3)
    assert first.stdout.splitlines() == [str(run)]  # rank 0 alone reports
    same_curve(losses(run), expected[:3])
    shutil.copytree(run, tmp_path / "alone")
    train(toy_features, tmp_path / "alone", load_config(None, parse_overrides([*CONFIG, "steps=6"])), device="cpu",
          resume=True, progress=False)
    same_curve(losses(tmp_path / "alone"), expected)
    resumed = train_with_torchrun(toy_features, run, 6, "--resume")
    assert resumed.stdout.splitlines() == [str(run)] and "from step 3 to 6" in resumed.stderr
    same_curve(losses(run), expected)
    assert files(run) == files(single)
    state, reference = load_checkpoint(run / "checkpoints" / "last.pt"), load_checkpoint(single / "checkpoints" /
                                                                                          "last.pt")
    assert state["step"] == 6 and state["embedder"].keys() == reference["embedder"].keys()  # BatchNorm3d's keys
    for key, value in reference["embedder"].items():  # up to rounding, which Adam can scale up to one step (lr)
        torch.testing.assert_close(state["embedder"][key].float(), value.float(), rtol=0, atol=1e-4)


def test_two_process_supervised_run_follows_the_single_process_curve(toy_features: Path, tmp_path: Path) -> None:
    """Supervised training: its mean over the labelled frames of the global batch, as in one process."""
    expected = one_process(toy_features, tmp_path / "single", 4, "objective=supervised")
    train_with_torchrun(toy_features, tmp_path / "run", 4, "--objective", "supervised")
    same_curve(losses(tmp_path / "run"), expected)


def test_a_locked_run_folder_stops_every_rank(toy_features: Path, tmp_path: Path) -> None:
    """Rank 0 alone takes the run folder's lock; when another process holds it, rank 0 stops with the lock's
    message and rank 1, instead of waiting for rank 0, stops naming it."""
    run = tmp_path / "run"
    run.mkdir()
    with FileLock(run / LOCK_NAME):  # another process holds it
        done = torchrun("train", "--features", toy_features, "--out", run, "--steps", 2, "--device", "cpu", "--quiet")
    busy = f"--out: {run} is in use by another vava process (train, embed or evaluate); wait for it to finish"
    assert done.returncode != 0 and done.stdout == ""
    errors = sorted(line for line in done.stderr.splitlines() if line.startswith("Error: "))
    assert errors == [f"Error: {busy}", f"Error: rank 0 stopped: {busy}"]
    assert sorted(path.name for path in run.iterdir()) == [LOCK_NAME]
