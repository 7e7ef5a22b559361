"""Maps the repository's folders into the one `vava` namespace (the metadata is in pyproject.toml).

The repository keeps `pipeline/`, `stages/` and `cache/` at its top level, while everything is
imported as `vava.pipeline`, `vava.stages`, `vava.cache` (and `vava.core`, the shared bottom layer),
so no generic top-level package is ever installed.
"""
from setuptools import find_packages, setup

FOLDERS = {"vava": "vava", "vava.pipeline": "pipeline", "vava.stages": "stages", "vava.cache": "cache",
           "vava.configs": "configs"}

packages = [name for root, folder in FOLDERS.items()
            for name in (root, *(f"{root}.{sub}" for sub in find_packages(folder)))]

setup(packages=packages, package_dir=FOLDERS,
      package_data={"vava.configs": ["*.yaml"], "vava.configs.sweeps": ["*.yaml"]})
