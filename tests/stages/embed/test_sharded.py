"""`vava embed` with the videos shared between ranks: the same embeddings file as one process writes."""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from vava.cache.store import FeatureSet
from vava.core.distributed import Ranks
from vava.core.embedder import NO_CONTEXT
from vava.core.embeddings_file import part_path
from vava.stages.embed.run import embed, on_maps, write_embeddings
from vava.stages.embed.sharded import write_sharded

VARYING = {"created", "run", "checkpoint"}  # when and where (in which copy of the run) the file was written


def contents(path: Path) -> tuple[dict, list[tuple]]:
    """A file's attrs (less VARYING) and, in stored order, each video's name, attrs and datasets."""
    with h5py.File(path, "r") as handle:
        attrs = {key: value for key, value in handle.attrs.items() if key not in VARYING}
        videos = [(name, dict(group.attrs), {key: group[key][:] for key in group})
                  for name, group in handle["videos"].items()]
    return attrs, videos


def assert_same_file(got: Path, want: Path) -> None:
    got_attrs, got_videos = contents(got)
    want_attrs, want_videos = contents(want)
    assert str(got_attrs) == str(want_attrs)
    assert [name for name, *_ in got_videos] == [name for name, *_ in want_videos]
    for (_, attrs, data), (_, want_video_attrs, want_data) in zip(got_videos, want_videos):
        assert str(attrs) == str(want_video_attrs)
        assert data.keys() == want_data.keys()
        assert all(np.array_equal(data[key], want_data[key]) and data[key].dtype == want_data[key].dtype
                   for key in data)


def test_one_rank_writes_through_its_part_and_leaves_no_part(toy_features: Path, tmp_path: Path) -> None:
    """The merge and the clean-up, in one process (the torchrun test below runs two)."""
    fs = FeatureSet.open(toy_features)
    embed_one = on_maps(fs, lambda maps: maps[:, -1].mean(dim=(-2, -1)), NO_CONTEXT, 7, torch.device("cpu"))
    out = tmp_path / "out"
    out.mkdir()
    want = write_embeddings(out / "want.h5", fs, fs.videos(), embed_one, {"embedder": "identity"})
    stale = part_path(out / "got.h5", 3)  # left by a job of 4 ranks that died
    stale.write_bytes(b"partial")
    got = write_sharded(out / "got.h5", fs, fs.videos(),
                        lambda path, share: write_embeddings(path, fs, share, embed_one, {"embedder": "identity"}),
                        Ranks(0, 1, 0))
    assert_same_file(got, want)
    assert sorted(p.name for p in out.iterdir()) == ["got.h5", "want.h5"]


@pytest.mark.slow
def test_two_processes_write_the_single_process_file(trained_once: tuple[Path, Path], tmp_path: Path) -> None:
    single, shared = tmp_path / "single", tmp_path / "shared"
    for run in (single, shared):
        shutil.copytree(trained_once[1], run)
    want = embed(single, splits=("train", "val"), progress=False)
    part_path(shared / "embeddings.h5", 0).write_bytes(b"left by a job that died")
    part_path(shared / "embeddings.h5", 2).write_bytes(b"left by a job of 3 ranks that died")
    # `--` ends torchrun's options: its parser would take vava's --run for an abbreviation of its --run-path
    done = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
                           "--no-python", "--", str(Path(sys.executable).parent / "vava"), "embed", "--run",
                           str(shared), "--quiet"], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines() == [str(shared / "embeddings.h5")]  # rank 0 alone prints
    assert_same_file(shared / "embeddings.h5", want)
    assert not [p.name for p in shared.iterdir() if p.name.endswith(".part")]
