"""Reading pickles from untrusted sources: only the globals that torch tensors, numpy arrays and
OrderedDicts are rebuilt from are resolved; anything else is refused before it can run.

A plain `pickle.dump` of a torch tensor rebuilds through `torch._utils._rebuild_tensor_v2`, whose
storage comes from `torch.storage._load_from_bytes`: that one calls `torch.load(..., weights_only=False)`
on the embedded bytes, so it is replaced by a version that loads them with `weights_only=True`.
"""
from __future__ import annotations

import _codecs
import collections
import io
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch._utils

try:
    from numpy._core import multiarray, numeric
except ImportError:  # numpy < 2
    from numpy.core import multiarray, numeric  # type: ignore[no-redef]

from vava.core.errors import VavaError


class _Refused(Exception):
    """A part of the pickle that is not plain data (the reason is reported with the file's path)."""


def _load_storage(data: bytes) -> Any:
    try:
        return torch.load(io.BytesIO(data), weights_only=True)
    except Exception as err:
        # torch's message is several lines, advising weights_only=False; keep the line that names the cause
        lines = [line for line in str(err).splitlines() if line.strip()]
        cause = next((line for line in lines if "GLOBAL" in line), lines[0] if lines else type(err).__name__)
        raise _Refused(f"refused the tensor storage: torch.load(weights_only=True) cannot read it ({cause})") from None


_NUMPY_CORE = {
    ("multiarray", "_reconstruct"): multiarray._reconstruct,
    ("multiarray", "scalar"): multiarray.scalar,
    ("numeric", "_frombuffer"): numeric._frombuffer,
}
# numpy 1.x pickles name `numpy.core`, numpy 2.x `numpy._core`: both resolve to the installed numpy's objects.
_ALLOWED: dict[tuple[str, str], Any] = {
    ("torch._utils", "_rebuild_tensor_v2"): torch._utils._rebuild_tensor_v2,
    ("torch.storage", "_load_from_bytes"): _load_storage,
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("_codecs", "encode"): _codecs.encode,  # protocol 2 spells bytes as encode(str, "latin1")
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    **{(f"numpy.{core}.{module}", name): value
       for core in ("core", "_core") for (module, name), value in _NUMPY_CORE.items()},
}


class _RestrictedUnpickler(pickle.Unpickler):
    def __init__(self, handle: io.BufferedIOBase, path: Path) -> None:
        super().__init__(handle)
        self.path = path

    def find_class(self, module: str, name: str) -> Any:
        try:
            return _ALLOWED[module, name]
        except KeyError:
            raise VavaError(f"{self.path}: refused to unpickle the global {module}.{name} (only torch tensors, "
                            "numpy arrays and plain Python values are read from pickles)") from None


def load_pickle(path: str | Path) -> Any:
    """The object pickled in `path`, read with only the globals of tensors, arrays and OrderedDicts
    allowed; a refused global or an unreadable file is a one-line `VavaError` naming `path`."""
    path = Path(path)
    try:
        with path.open("rb") as handle:
            return _RestrictedUnpickler(handle, path).load()
    except VavaError:
        raise
    except _Refused as err:
        raise VavaError(f"{path}: {err}") from None
    except OSError as err:
        raise VavaError(f"{path}: cannot read ({err.strerror or err})") from None
    except Exception as err:  # a malformed pickle fails in many ways (UnpicklingError, EOFError, TypeError...)
        reason = next(iter(str(err).splitlines()), "")
        raise VavaError(f"{path}: not a readable pickle ({type(err).__name__}: {reason})") from None
