"""vava: self-supervised video alignment (VAVA, CVPR 2022) on a cached-feature pipeline.

`vava.X.Y` is the file `X/Y.py` of the repository (setup.py maps each layer's folder). Layers, from
the bottom (each imports only the ones below it; checked by import-linter):

- `vava.core`: errors, devices, video I/O, `VideoRecord`, the backbone and the embedder network,
  and one contract module per artefact (run folder, embeddings file, report file);
- `vava.cache`: the zarr feature store (the feature-set artefact);
- `vava.stages`: extract, train, embed, evaluate, align; no stage imports another;
- `vava.pipeline`: orchestration: the `vava` CLI, dataset adapters, sweeps.
"""
from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("vava-align")
except PackageNotFoundError:  # imported from a source tree that was never installed
    __version__ = "0+unknown"
