"""One process per run folder (real processes): while `vava train` runs in a process of its own, a second train,
embed or evaluate on its run is refused in one line; the lock goes with the process."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.helpers import TASKS, cli, one_line_error
from tests.stages.train.helpers import RUN_TINY
from vava.core.errors import VavaError
from vava.stages.embed.run import embed
from vava.stages.evaluate.run import evaluate_run

REPO = Path(__file__).resolve().parents[2]


def test_second_process_on_a_training_run_is_refused(features: Path, tmp_path: Path) -> None:
    out = tmp_path / "busy"
    command = [sys.executable, "-m", "vava.pipeline.cli", "train", "--features", str(features), "--out", str(out),
               "--steps", "1000000", "--quiet", *[a for kv in RUN_TINY for a in ("--set", kv)]]
    first = subprocess.Popen(command, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)},
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        while not (out / "checkpoints" / "last.pt").is_file():  # training, with the folder locked
            assert first.poll() is None and time.monotonic() < deadline, first.stderr.read().decode()
            time.sleep(0.2)
        busy = r"{option}: .*busy is in use by another vava process \(train, embed or evaluate\); wait for it"
        one_line_error(cli("train", "--features", features, "--out", out, "--steps", "2", "--resume", "--quiet"),
                       busy.format(option="--out"))
        one_line_error(cli("embed", "--run", out, "--quiet"), busy.format(option="--run"))
        with pytest.raises(VavaError, match="^" + busy.format(option="run")):
            evaluate_run(out, **TASKS)
        assert not (out / "embeddings.h5").exists()
    finally:
        first.kill()
        first.wait()
    embed(out, progress=False)  # the lock went with the process
