"""tools/lint_imports.py: import-linter reads each layer from its own folder (`vava.X.Y` is `X/Y.py`)."""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
MODULES = {  # a tree of the repository's shape: every layer a top-level folder, vava/ only its __init__
    "vava/__init__.py": "",
    "core/__init__.py": "", "core/files.py": "",
    "cache/__init__.py": "", "cache/store.py": "from vava.core import files\n",
    "stages/__init__.py": "", "stages/extract/__init__.py": "", "stages/train/__init__.py": "",
    "stages/embed/__init__.py": "", "stages/evaluate/__init__.py": "", "stages/align/__init__.py": "",
    "stages/train/loop.py": "from vava.cache import store\n",
    "pipeline/__init__.py": "", "pipeline/cli.py": "from vava.stages.train import loop\n",
    "tests/__init__.py": "", "tests/test_x.py": "from vava.pipeline import cli\n",  # not a layer: not linted
}


def lint(root: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(root / "tools" / "lint_imports.py"), "--no-cache", "--config",
                           str(root / "pyproject.toml")], cwd=root, capture_output=True, text=True, timeout=120, check=False)


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    for name, text in MODULES.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    (tmp_path / "tools").mkdir()
    shutil.copy(REPO / "tools" / "lint_imports.py", tmp_path / "tools")
    shutil.copy(REPO / "pyproject.toml", tmp_path)
    return tmp_path


def test_a_layered_tree_keeps_both_contracts(tree: Path) -> None:
    result = lint(tree)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Contracts: 2 kept, 0 broken." in result.stdout


def test_an_upward_import_and_a_stage_importing_a_stage_are_found(tree: Path) -> None:
    (tree / "core" / "files.py").write_text("from vava.cache import store\n")
    (tree / "stages" / "extract" / "run.py").write_text("from vava.stages.train import loop\n")
    result = lint(tree)
    assert result.returncode == 1
    assert "Layers: pipeline > stages > cache > core BROKEN" in result.stdout
    assert "No stage imports another stage BROKEN" in result.stdout
    assert "vava.core.files -> vava.cache.store" in result.stdout
