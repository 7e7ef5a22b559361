"""Messages name options by key and stage calls as calls; a front end (the CLI) installs its own spelling,
and no code below the CLI spells a command-line flag."""
from __future__ import annotations

import ast
import re
from collections.abc import Mapping
from pathlib import Path

import pytest

from vava.core.errors import ConfigError, Naming, invocation, naming, option_name
from vava.core.validation import option_error

REPO = Path(__file__).resolve().parents[2]
BELOW_THE_CLI = ("core", "cache", "stages")
FLAG = re.compile(r"(?<![\w-])--[A-Za-z]")  # --weights, `--run`, (--identity ...), not a bare "--" or "a--b"


class Shouting(Naming):
    def option(self, key: str) -> str:
        return key.upper()

    def invocation(self, stage: str, options: Mapping[str, object]) -> str:
        return " ".join([stage.upper(), *map(str, options.values())])


def test_python_callers_see_keys_and_calls() -> None:
    assert option_name("image_size") == "image_size"
    assert invocation("embed", run="runs/a", checkpoint="best") == "embed(run=runs/a, checkpoint=best)"
    assert invocation("extract", repair=True) == "extract(repair=True)"
    error = option_error("frames/size", "too big")
    assert (str(error), error.key, error.message) == ("frames/size: too big", "frames/size", "too big")


def test_an_installed_naming_spells_messages_made_in_its_block_and_is_undone_after() -> None:
    with pytest.raises(ConfigError) as error, naming(Shouting()):
        assert (option_name("run"), invocation("embed", run="r")) == ("RUN", "EMBED r")
        raise option_error("frames/size", "too big")
    assert str(error.value) == "FRAMES/SIZE: too big" and error.value.key == "frames/size"
    assert option_name("run") == "run"  # restored, also after an exception


def _docstrings(tree: ast.AST) -> set[int]:
    """The ids of the docstring nodes of a module's module, classes and functions."""
    return {id(node.body[0].value) for node in ast.walk(tree)
            if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
            and node.body and isinstance(node.body[0], ast.Expr) and isinstance(node.body[0].value, ast.Constant)}


def test_no_flag_literal_below_the_cli() -> None:
    """Only `pipeline/` spells flags: below it messages use `option_name`/`invocation` (docstrings may show usage)."""
    found = []
    for path in sorted(p for layer in BELOW_THE_CLI for p in (REPO / layer).rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        docstrings = _docstrings(tree)
        found += [f"{path.relative_to(REPO)}:{node.lineno}: {node.value!r}" for node in ast.walk(tree)
                  if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings
                  and FLAG.search(node.value)]
    assert not found, "flag literals below the CLI (name options with vava.core.errors.option_name):\n" + \
        "\n".join(found)
