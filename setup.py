"""Maps the repository's folders into the one `vava` namespace (the metadata is in pyproject.toml).

The rule: `vava.X.Y` is the file `X/Y.py` for every folder X of `LAYERS`, so no generic top-level
package (`core`, `pipeline`, ...) is ever installed. `vava/` holds only the namespace's `__init__.py`.
"""
from setuptools import find_packages, setup

LAYERS = ("core", "cache", "stages", "pipeline", "configs")  # configs: the presets and plans, as package data
FOLDERS = {"vava": "vava", **{f"vava.{layer}": layer for layer in LAYERS}}

packages = [name for root, folder in FOLDERS.items()
            for name in (root, *(f"{root}.{sub}" for sub in find_packages(folder)))]

setup(packages=packages, package_dir=FOLDERS,
      package_data={"vava.configs": ["*.yaml"], "vava.configs.sweeps": ["*.yaml"]})
