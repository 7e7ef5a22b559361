"""Choosing a run's checkpoint (last, best, a step, a file of the same run) and the names of its outputs."""
from __future__ import annotations

import ast
import importlib
import json
import re
import shutil
from pathlib import Path

import pytest

from tests.stages.train.helpers import config
from vava.core import embeddings_file, report_file, run_folder
from vava.core.errors import VavaError
from vava.core.run_folder import SUBFOLDERS, checkpoint_tag, find_checkpoint, load_embedder, tagged_name
from vava.stages.train.loop import train


@pytest.mark.parametrize(("which", "tag", "name"), [
    ("last", "", "embeddings.h5"), ("best", "best", "embeddings-best.h5"), ("500", "step500", "embeddings-step500.h5"),
    ("0007", "step7", "embeddings-step7.h5"), ("/x/step_0000500.pt", "step_0000500", "embeddings-step_0000500.h5"),
    ("keep/my run.v2.pt", "my_run.v2", "embeddings-my_run.v2.h5")])
def test_checkpoint_tags_name_the_outputs(which: str, tag: str, name: str) -> None:
    assert checkpoint_tag(which) == tag
    assert tagged_name("embeddings.h5", tag) == name
    assert tagged_name("report.json", tag) == ("report.json" if not tag else f"report-{tag}.json")


@pytest.fixture
def run(toy_features: Path, tmp_path: Path) -> Path:
    train(toy_features, tmp_path / "run", config("steps=4", "checkpoint_every=2"), progress=False)
    return tmp_path / "run"


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
