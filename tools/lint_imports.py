"""`lint-imports` on the source tree itself (`make lint`), where `vava.X.Y` is the file `X/Y.py`.

import-linter finds a root package's modules by walking the folder its import spec names. Here the
layers are top-level folders mapped into `vava` by setup.py, which no filesystem walk follows; so,
for this process only, `vava` is announced as a namespace package whose folder is the repository
root, and each layer (`root_packages` in pyproject.toml) is found as the folder of its own name.
No project code is imported. Usage: as `lint-imports` (its options pass through).
"""
import importlib.machinery
import sys
from pathlib import Path

ROOT = str(Path(__file__).resolve().parents[1])


class NamespaceAtRoot:
    """A meta-path finder that answers for `vava` alone: a namespace package at the repository root."""

    @staticmethod
    def find_spec(name: str, path: object = None, target: object = None) -> importlib.machinery.ModuleSpec | None:
        if name != "vava":
            return None
        spec = importlib.machinery.ModuleSpec(name, None, is_package=True)
        spec.submodule_search_locations = [ROOT]
        return spec


if __name__ == "__main__":
    sys.meta_path.insert(0, NamespaceAtRoot)
    from importlinter.cli import lint_imports_command

    sys.exit(lint_imports_command())
