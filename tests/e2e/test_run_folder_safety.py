"""Run folders and checkpoints: crafted checkpoints refused, writes never through symlinks, one
process per run, paths that work from anywhere, and disk-full / corrupt-checkpoint recovery."""
from __future__ import annotations

import errno
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
from click.testing import CliRunner
from matplotlib.figure import Figure

from tests.conftest import write_toy_features
from vava.core.config import parse_overrides
from vava.core.errors import VavaError
from vava.core.run_folder import load_checkpoint
from vava.core.videoio import write_video
from vava.pipeline.cli import main
from vava.stages.align.run import TrainedRun, align_videos
from vava.stages.embed.run import embed
from vava.stages.evaluate.run import evaluate_run
from vava.stages.train.config import load_config
from vava.stages.train.loop import train

TINY = ["model.conv_channels=16", "model.fc_channels=16", "model.embedding_dim=8", "data.frames_per_video=8",
        "data.batch_pairs=2", "log_every=1", "checkpoint_every=2"]
TASKS = {"tasks": ("progress",), "ks": (1,)}
REPO = Path(__file__).resolve().parents[2]


def config(steps: int):
    return load_config(None, parse_overrides([*TINY, f"steps={steps}"]))


def cli(*args: str):
    return CliRunner().invoke(main, [str(a) for a in args])


def one_line_error(result, pattern: str) -> None:
    """The CLI failed with exit 1 and a single line matching `pattern`, no traceback."""
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert re.search(pattern, result.stderr), result.stderr


def temporaries(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob("*") if p.name.startswith(".") and ".tmp" in p.name)


def only_checkpoint(run: Path, state: object) -> Path:
    """Save `state` as the run's only checkpoint: last.pt, with no step_N.pt to fall back to."""
    for old in (run / "checkpoints").iterdir():
        old.unlink()
    torch.save(state, run / "checkpoints" / "last.pt")
    return run / "checkpoints" / "last.pt"


def saved(run: Path) -> dict:
    return torch.load(run / "checkpoints" / "last.pt", weights_only=True)


@pytest.fixture(scope="module")
def trained_once(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(feature set, run trained 4 steps with checkpoints at 2 and 4): copy the run before changing it."""
    base = tmp_path_factory.mktemp("safety")
    features = write_toy_features(base / "cache" / "toyfeatures00000")
    train(features, base / "run", config(4), progress=False)
    return features, base / "run"


@pytest.fixture
def run(trained_once: tuple[Path, Path], tmp_path: Path) -> Path:
    copy = tmp_path / "run"
    shutil.copytree(trained_once[1], copy)
    return copy


@pytest.fixture
def features(trained_once: tuple[Path, Path]) -> Path:
    return trained_once[0]


# -- 1. checkpoints load without running code, and are checked -------------------------------
class _Exploit:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return os.mkdir, (str(self.marker),)


def test_crafted_checkpoint_is_refused_and_runs_nothing(run: Path, features: Path, tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    only_checkpoint(run, {"step": 4, "payload": _Exploit(marker)})
    refused = r"last.pt: refused: it asks to load posix.mkdir, which is neither a tensor nor a plain value"

    one_line_error(cli("embed", "--run", run, "--quiet"), refused)
    with pytest.raises(VavaError, match=refused):
        train(features, run, config(6), resume=True, progress=False)
    with pytest.raises(VavaError, match=refused):
        TrainedRun(run, device="cpu")
    with pytest.raises(VavaError, match=refused):
        load_checkpoint(run / "checkpoints")
    assert not marker.exists()


@pytest.mark.parametrize(("change", "message"), [
    (lambda s: [1, 2], r"not a vava checkpoint \(holds a list, not a dict\)"),
    (lambda s: {k: v for k, v in s.items() if k != "embedder"}, r"not a vava checkpoint \(no embedder\)"),
    (lambda s: {**s, "step": "4"}, r"step is a str, not a valid value"),
    (lambda s: {**s, "embedder": {"weight": 3}}, r"embedder is not a state dict of named tensors"),
    (lambda s: {**s, "config": "{not json"}, r"config: Expecting property name"),
    (lambda s: {**s, "config": json.dumps({"model": {"conv_channels": "many"}})},
     r"config: model.conv_channels: expected int, got 'many'"),
    (lambda s: {**s, "config": json.dumps({"model": {"conv_channels": 32}})},
     r"its embedder does not fit the model of its config \(Error\(s\) in loading state_dict"),
])
def test_checkpoint_with_wrong_keys_or_types_is_one_line_naming_the_file(run: Path, change, message: str) -> None:
    last = only_checkpoint(run, change(saved(run)))
    result = cli("embed", "--run", run, "--quiet")
    one_line_error(result, message)
    assert str(last) in result.stderr and not (run / "embeddings.h5").exists()


def test_checkpoint_with_the_config_as_a_dict_still_loads(run: Path) -> None:
    """Checkpoints written before the config was stored as JSON text hold it as a plain dict."""
    state = saved(run)
    only_checkpoint(run, {**state, "config": json.loads(state["config"])})
    assert load_checkpoint(run / "checkpoints")["model"].conv_channels == 16


def test_align_checks_the_checkpoint_channels_against_the_features(run: Path) -> None:
    only_checkpoint(run, {**saved(run), "in_channels": 32})
    with pytest.raises(VavaError, match=r"^features: .* has 16 channels, the run was trained on 32"):
        TrainedRun(run, device="cpu")


# -- 2. what train/embed/evaluate/align write, and where ---------------------------------------
def test_train_refuses_a_non_empty_out_that_is_not_a_run(features: Path, tmp_path: Path) -> None:
    out = tmp_path / "documents"
    out.mkdir()
    (out / "config.yaml").write_text("mine")
    one_line_error(cli("train", "--features", features, "--out", out, "--steps", "2", "--quiet"),
                   r"--out: .*documents is not empty and is not a run folder \(no run.json\); .* --force")
    assert sorted(p.name for p in out.iterdir()) == ["config.yaml"] and (out / "config.yaml").read_text() == "mine"

    forced = cli("train", "--features", features, "--out", out, "--steps", "2", "--quiet", "--force",
                 *[a for kv in TINY for a in ("--set", kv)])
    assert forced.exit_code == 0, forced.output
    assert (out / "checkpoints" / "last.pt").is_file() and (out / "config.yaml").read_text() != "mine"


def test_artefacts_replace_symlinks_instead_of_writing_through_them(run: Path, features: Path,
                                                                   tmp_path: Path) -> None:
    victims = {}
    for name in ("config.yaml", "run.json", "train_log.csv", "embeddings.h5", "report.json", "report.md",
                 "plots/tsne.png", "plots/loss.png"):
        victim = tmp_path / "victims" / name.replace("/", "_")
        victim.parent.mkdir(exist_ok=True)
        victim.write_text(f"precious {name}")
        (run / name).parent.mkdir(exist_ok=True)
        (run / name).unlink(missing_ok=True)
        (run / name).symlink_to(victim)
        victims[name] = victim

    train(features, run, config(5), resume=True, progress=False)
    embed(run, progress=False)
    evaluate_run(run, **TASKS)
    for name, victim in victims.items():
        assert victim.read_text() == f"precious {name}", name
        assert not (run / name).is_symlink() and (run / name).stat().st_size > 0, name
    assert temporaries(run) == []


def test_align_video_replaces_a_symlink_and_reports_a_full_disk(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    victim, out, frames = tmp_path / "victim.mp4", tmp_path / "aligned.mp4", np.zeros((2, 16, 16, 3), dtype=np.uint8)
    victim.write_text("precious")
    out.symlink_to(victim)
    write_video(out, frames, 15.0)
    assert victim.read_text() == "precious" and not out.is_symlink()
    written = out.read_bytes()

    def disk_full(src: object, dst: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "replace", disk_full)
    with pytest.raises(VavaError, match=r"aligned.mp4: cannot write \(the disk is full\); nothing was replaced$"):
        write_video(out, frames[:1], 15.0)
    assert out.read_bytes() == written and sorted(p.name for p in tmp_path.iterdir()) == ["aligned.mp4", "victim.mp4"]


def test_symlinked_run_folder_or_subfolder_is_refused(run: Path, features: Path, tmp_path: Path) -> None:
    link = tmp_path / "link-to-run"
    link.symlink_to(run)
    with pytest.raises(VavaError, match=r"^out: .*link-to-run is a symlink \(to .*run\); give the real folder"):
        train(features, link, config(6), resume=True, progress=False)
    with pytest.raises(VavaError, match=r"^run: .*link-to-run is a symlink"):
        embed(link, progress=False)

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    embed(run, progress=False)
    (run / "plots").symlink_to(elsewhere)
    with pytest.raises(VavaError, match=r"^run: .*plots is a symlink to .*elsewhere, outside the run folder"):
        evaluate_run(run, **TASKS)
    shutil.move(run / "checkpoints", elsewhere / "checkpoints")
    (run / "checkpoints").symlink_to(elsewhere / "checkpoints")
    with pytest.raises(VavaError, match=r"^out: .*checkpoints is a symlink to .*elsewhere"):
        train(features, run, config(6), resume=True, progress=False)
    assert sorted(p.name for p in elsewhere.iterdir()) == ["checkpoints"]
    assert not (run / "report.json").exists()


def test_align_output_suffixes(tmp_path: Path) -> None:
    with pytest.raises(VavaError, match=r"^out: .*aligned.avi must end in .mp4"):
        align_videos(tmp_path / "run", "a", "b", tmp_path / "aligned.avi")
    with pytest.raises(VavaError, match=r"^plot: .*plot.jpg must end in .png"):
        align_videos(tmp_path / "run", "a", "b", tmp_path / "aligned.mp4", plot_png=tmp_path / "plot.jpg")
    one_line_error(cli("align", "--run", tmp_path / "run", "a", "b", "--out", tmp_path / "x.gif"),
                   r"--out: .*x.gif must end in .mp4")


# -- 7. one process per run folder -------------------------------------------------------------
def test_second_process_on_a_training_run_is_refused(features: Path, tmp_path: Path) -> None:
    out = tmp_path / "busy"
    command = [sys.executable, "-m", "vava.pipeline.cli", "train", "--features", str(features), "--out", str(out),
               "--steps", "1000000", "--quiet", *[a for kv in TINY for a in ("--set", kv)]]
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


# -- 10. run folders work from any working directory ---------------------------------------------
def test_run_folder_works_from_another_directory(features: Path, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(features.parent.parent)
    train(Path("cache") / features.name, tmp_path / "run", config(2), progress=False)
    monkeypatch.chdir(tmp_path)
    assert json.loads((tmp_path / "run" / "run.json").read_text())["features"] == str(features.resolve())
    assert load_checkpoint(Path("run") / "checkpoints")["features"] == str(features.resolve())

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    path = embed(tmp_path / "run", progress=False)
    with h5py.File(path) as handle:
        assert handle.attrs["feature_set"] == str(features.resolve())
        assert handle.attrs["run"] == str((tmp_path / "run").resolve())
        assert handle.attrs["checkpoint"] == str((tmp_path / "run" / "checkpoints" / "last.pt").resolve())


def test_align_takes_the_feature_set_from_features_when_it_moved(run: Path, features: Path, tmp_path: Path) -> None:
    moved = write_toy_features(tmp_path / "moved" / "toyfeatures00000")
    only_checkpoint(run, {**saved(run), "features": str(tmp_path / "gone")})
    with pytest.raises(VavaError, match=r"gone.*the feature set the run was trained on; pass features if it moved\)$"):
        TrainedRun(run, device="cpu")
    assert TrainedRun(run, device="cpu", features=moved).feature_set.path == moved
    cached = cli("align", "--run", run, "toy0", "toy1", "--out", tmp_path / "a.mp4", "--features", moved)
    one_line_error(cached, r"video 'toy0': cannot read the dataset the features came from")


# -- 12. disk full, and a corrupt last.pt ------------------------------------------------------
def _final_weights(run: Path) -> dict[str, torch.Tensor]:
    return load_checkpoint(run / "checkpoints")["embedder"]


@pytest.mark.parametrize(("target", "nth"), [("step_0000004.pt", 1), ("last.pt", 2)])
def test_disk_full_while_saving_a_checkpoint_then_resume(features: Path, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch, target: str,
                                                         nth: int) -> None:
    whole, broken = tmp_path / "whole", tmp_path / "broken"
    train(features, whole, config(6), progress=False)
    real_replace, seen = os.replace, []

    def disk_full_at_target(src: object, dst: object) -> None:
        seen.append(Path(dst).name)
        if seen.count(target) == nth and Path(dst).name == target:
            raise OSError(errno.ENOSPC, "No space left on device")
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", disk_full_at_target)
    with pytest.raises(VavaError) as failure:
        train(features, broken, config(6), progress=False)
    assert "\n" not in str(failure.value)
    assert str(failure.value) == (f"{broken / 'checkpoints' / target}: cannot write (the disk is full); "
                                  "nothing was replaced")
    assert temporaries(broken) == []
    monkeypatch.undo()

    summary = train(features, broken, config(6), resume=True, progress=False)
    assert summary.start_step == 2
    final, reference = _final_weights(broken), _final_weights(whole)
    assert final.keys() == reference.keys() and all(torch.equal(final[k], reference[k]) for k in final)


def test_disk_full_while_embedding_or_plotting_keeps_what_was_there(run: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = embed(run, progress=False)
    before = path.read_bytes()
    real_fdopen = os.fdopen

    class FullDisk:
        """The file the embeddings' bytes go to: the disk fills up after the first 100 of them."""

        def __init__(self, handle) -> None:
            self.handle = handle

        def __enter__(self) -> FullDisk:
            return self

        def __exit__(self, *exc: object) -> None:
            self.handle.close()

        def write(self, data) -> None:
            self.handle.write(bytes(data)[:100])
            raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fdopen", lambda fd, *args, **kwargs: FullDisk(real_fdopen(fd, *args, **kwargs)))
    with pytest.raises(VavaError, match=r"embeddings.h5: cannot write \(the disk is full\); nothing was replaced$"):
        embed(run, progress=False)
    monkeypatch.undo()
    assert path.read_bytes() == before and temporaries(run) == []

    def savefig_full(self, *args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(Figure, "savefig", savefig_full)
    with pytest.raises(VavaError, match=r"tsne.png: cannot write \(the disk is full\); nothing was replaced$"):
        evaluate_run(run, **TASKS)
    assert (run / "report.json").is_file() and temporaries(run) == []


def test_corrupt_last_checkpoint_falls_back_to_the_newest_readable_step(run: Path, features: Path,
                                                                       caplog: pytest.LogCaptureFixture) -> None:
    checkpoints = run / "checkpoints"
    last, step4 = checkpoints / "last.pt", checkpoints / "step_0000004.pt"
    last.unlink()  # last.pt shares step 4's bytes: cut a separate copy short
    last.write_bytes(step4.read_bytes()[:200])
    state = load_checkpoint(checkpoints)
    assert state["step"] == 4 and state["path"] == step4
    assert "last.pt: not a readable checkpoint" in caplog.text and f"using {step4} instead" in caplog.text

    caplog.clear()
    result = cli("embed", "--run", run, "--quiet")
    assert result.exit_code == 0, result.output
    assert [r.getMessage().startswith(f"warning: {last}: not a readable") for r in caplog.records] == [True]
    with h5py.File(run / "embeddings.h5") as handle:
        assert handle.attrs["checkpoint"] == str(step4.resolve()) and handle.attrs["step"] == 4
    assert TrainedRun(run, device="cpu").embedder is not None
    assert train(features, run, config(6), resume=True, progress=False).start_step == 4

    for path in checkpoints.iterdir():
        path.write_bytes(b"\0" * 10)  # every checkpoint damaged: the error names last.pt
    with pytest.raises(VavaError, match=r"last.pt: not a readable checkpoint"):
        load_checkpoint(checkpoints)
