"""Choosing a run's checkpoint (last, best, a step, a file of the same run) and the names of its outputs;
checkpoints loaded without running code and checked (crafted, mistyped, corrupt); run folders that are
symlinks or hold a file where a folder belongs refused; run folders used from any working directory."""
from __future__ import annotations

import ast
import importlib
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import h5py
import pytest

from tests.helpers import TASKS, cli, one_line_error, only_checkpoint, saved
from tests.stages.train.helpers import run_config
from vava.core import embeddings_file, report_file, run_folder
from vava.core.errors import VavaError
from vava.core.run_folder import (
    SUBFOLDERS,
    checkpoint_tag,
    find_checkpoint,
    load_checkpoint,
    load_embedder,
    tagged_name,
)
from vava.stages.align.run import TrainedRun
from vava.stages.embed.run import embed
from vava.stages.evaluate.run import evaluate_run
from vava.stages.train.loop import train


@pytest.mark.parametrize(("which", "tag", "name"), [
    ("last", "", "embeddings.h5"), ("best", "best", "embeddings-best.h5"), ("500", "step500", "embeddings-step500.h5"),
    ("0007", "step7", "embeddings-step7.h5"), ("/x/step_0000500.pt", "step_0000500", "embeddings-step_0000500.h5"),
    ("keep/my run.v2.pt", "my_run.v2", "embeddings-my_run.v2.h5")])
def test_checkpoint_tags_name_the_outputs(which: str, tag: str, name: str) -> None:
    assert checkpoint_tag(which) == tag
    assert tagged_name("embeddings.h5", tag) == name
    assert tagged_name("report.json", tag) == ("report.json" if not tag else f"report-{tag}.json")


def test_find_checkpoint(run: Path, tmp_path: Path) -> None:
    folder = run / "checkpoints"
    assert find_checkpoint(run) == folder / "last.pt"
    assert find_checkpoint(run, "2") == folder / "step_0000002.pt"
    assert load_embedder(run, "2").checkpoint["step"] == 2
    with pytest.raises(VavaError) as error:
        find_checkpoint(run, "3")
    assert str(error.value) == f"checkpoint: no checkpoint of step 3 in {folder} (saved steps: 2, 4)"
    with pytest.raises(VavaError) as error:
        find_checkpoint(tmp_path / "empty", "3")
    assert str(error.value) == f"checkpoint: no checkpoint of step 3 in {tmp_path / 'empty' / 'checkpoints'} " \
                               "(saved steps: none)"
    with pytest.raises(VavaError, match=r"^checkpoint: best: .* has no best.pt; train with eval_every N"):
        find_checkpoint(run, "best")
    with pytest.raises(VavaError) as error:
        find_checkpoint(run, "lastt")
    assert str(error.value) == "checkpoint: lastt is not last, best, a saved step or a checkpoint file"


def test_a_checkpoint_from_outside_must_be_of_the_same_run(run: Path, tmp_path: Path) -> None:
    copy = tmp_path / "elsewhere" / "mine.pt"
    copy.parent.mkdir()
    shutil.copy(run / "checkpoints" / "step_0000002.pt", copy)
    assert load_embedder(run, str(copy)).checkpoint["step"] == 2
    config_text = (run / "config.yaml").read_text()
    (run / "config.yaml").write_text(config_text.replace("steps: 4", "steps: 9"))  # a resumed run: still the same
    assert load_embedder(run, str(copy)).checkpoint["step"] == 2
    (run / "config.yaml").write_text(config_text.replace("seed: 0", "seed: 3"))
    with pytest.raises(VavaError) as error:
        load_embedder(run, str(copy))
    assert str(error.value) == f"checkpoint: {copy} is not a checkpoint of run {run} (its config differs in seed)"
    info = json.loads((run / "run.json").read_text())
    (run / "run.json").write_text(json.dumps({**info, "fingerprint": "other0000000000"}))
    with pytest.raises(VavaError) as error:
        load_embedder(run, str(copy))
    assert str(error.value) == (f"checkpoint: {copy} is not a checkpoint of run {run} (trained on feature set "
                                "toyfeatures00000, the run on other0000000000)")
    (run / "run.json").unlink()
    with pytest.raises(VavaError, match=r"is not a checkpoint of run .* \(its run.json or config.yaml cannot be read"):
        load_embedder(run, str(copy))


CONTRACTS = (run_folder, embeddings_file, report_file)  # the modules that own the names of a run folder's files
ELSEWHERE = {("core/backbone.py", "checkpoints")}  # torch hub's folder of downloaded weights, not a run's


def test_only_the_contract_modules_spell_a_run_folder_name() -> None:
    """Every other module imports a run-folder file or subfolder name from its contract module: no string literal
    of the source equals one (a "/" either side aside; names inside longer text, as in messages, are prose)."""
    names = {value for module in CONTRACTS for key, value in vars(module).items()
             if key.isupper() and isinstance(value, str) and re.fullmatch(r"\.?[\w.-]+\.\w+", value)} | set(SUBFOLDERS)
    assert {"report.json", "embeddings.h5", "sweep_key.json", "virtual_mass.json", "loss.png", "plots"} <= names
    contracts = {Path(module.__file__).resolve() for module in CONTRACTS}
    spelt = []
    for layer in ("core", "cache", "stages", "pipeline"):
        root = Path(importlib.import_module(f"vava.{layer}").__path__[0])
        for path in sorted(set(root.rglob("*.py")) - contracts):
            where = f"{layer}/{path.relative_to(root).as_posix()}"
            spelt += [(where, node.value.strip("/")) for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
                      if isinstance(node, ast.Constant) and isinstance(node.value, str)
                      and node.value.strip("/") in names]
    assert set(spelt) == ELSEWHERE


# -- checkpoints load without running code, and are checked ----------------------------------------


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
        train(features, run, run_config(6), resume=True, progress=False)
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
    assert train(features, run, run_config(6), resume=True, progress=False).start_step == 4

    for path in checkpoints.iterdir():
        path.write_bytes(b"\0" * 10)  # every checkpoint damaged: the error names last.pt
    with pytest.raises(VavaError, match=r"last.pt: not a readable checkpoint"):
        load_checkpoint(checkpoints)


REPO = Path(__file__).resolve().parents[2]


class _System:
    def __reduce__(self):
        return os.system, ("touch PWNED",)


def test_a_plain_pickle_checkpoint_is_one_line_and_runs_nothing(toy_features: Path, tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """A `pickle.dump`ed last.pt (protocol 4, not a torch zip): refused, with no torch warning around it."""
    import pickle

    monkeypatch.chdir(tmp_path)
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    (run / "checkpoints" / "last.pt").write_bytes(pickle.dumps(_System(), protocol=4))
    # in a process of its own: pytest would capture torch's warning instead of letting it reach stderr
    result = subprocess.run([sys.executable, "-m", "vava.pipeline.cli", "embed", "--run", str(run), "--device", "cpu"],
                            capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert result.returncode == 1
    assert re.fullmatch(r"Error: \S+/last\.pt: not a readable checkpoint [^\n]*\n", result.stderr), result.stderr
    assert not (tmp_path / "PWNED").exists()


# -- run folders: symlinks refused, a file where the run keeps a folder, any working directory -----


def test_symlinked_run_folder_or_subfolder_is_refused(run: Path, features: Path, tmp_path: Path) -> None:
    link = tmp_path / "link-to-run"
    link.symlink_to(run)
    with pytest.raises(VavaError, match=r"^out: .*link-to-run is a symlink \(to .*run\); give the real folder"):
        train(features, link, run_config(6), resume=True, progress=False)
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
        train(features, run, run_config(6), resume=True, progress=False)
    assert sorted(p.name for p in elsewhere.iterdir()) == ["checkpoints"]
    assert not (run / "report.json").exists()


TINY = ["--set", "model.conv_channels=8", "--set", "model.fc_channels=8", "--set", "model.embedding_dim=8",
        "--set", "data.frames_per_video=6", "--set", "data.batch_pairs=1"]


@pytest.mark.parametrize("name", ["checkpoints", "plots"])
def test_a_file_in_place_of_a_run_subfolder_is_one_line(toy_features: Path, tmp_path: Path, name: str) -> None:
    run = tmp_path / "run"
    run.mkdir()
    (run / name).write_text("mine")
    result = cli("train", "--features", toy_features, "--out", run, "--steps", 1, "--device", "cpu", "--quiet",
                 "--force", *TINY)
    one_line_error(result, rf"--out: {re.escape(str(run / name))} is a file, where the run keeps a folder")
    assert (run / name).read_text() == "mine"


def test_run_folder_works_from_another_directory(features: Path, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(features.parent.parent)
    train(Path("cache") / features.name, tmp_path / "run", run_config(2), progress=False)
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
