"""Partial feature sets (cache/inspect.py `require_complete`): train and embed refuse a set with videos missing
unless allowed, and then warn."""
from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import toy_inputs, write_toy_features
from tests.helpers import cli, single_line
from tests.stages.train.helpers import TINY, config
from vava.cache.store import FeatureSet
from vava.core.errors import VavaError
from vava.stages.embed.run import embed
from vava.stages.train.loop import train


@pytest.fixture
def partial_features(tmp_path: Path) -> Path:
    """Six of the eight videos its manifest listed (an interrupted extract)."""
    path = tmp_path / "cache" / "partial000000000"
    FeatureSet.create(path, path.name, toy_inputs(8), {})
    return write_toy_features(path)


def test_train_and_embed_refuse_a_partial_set_unless_allowed(partial_features: Path, tmp_path: Path,
                                                            capsys: pytest.CaptureFixture) -> None:
    refused = r"partial000000000: only 6 of 8 videos are extracted \(2 missing or incomplete\); finish them with " \
              r"`vava extract`, or pass allow_partial to use these 6$"
    with pytest.raises(VavaError, match=refused):
        train(partial_features, tmp_path / "run", config("steps=2"), progress=False)
    assert not (tmp_path / "run").exists()
    with pytest.raises(VavaError, match=refused):
        embed(tmp_path / "identity", partial_features, identity=True, progress=False)

    summary = train(partial_features, tmp_path / "run", config("steps=2"), progress=False, allow_partial=True)
    assert summary.steps == 2
    assert embed(tmp_path / "run", progress=False, allow_partial=True).is_file()
    warning = "only 6 of 8 videos are extracted (2 missing or incomplete); going on with them (allow_partial)"
    assert capsys.readouterr().err.count(warning) == 2


def test_cli_allow_partial(partial_features: Path, tmp_path: Path) -> None:
    sets = [arg for item in TINY for arg in ("--set", item)]
    args = ["train", "--features", str(partial_features), "--out", str(tmp_path / "run"), "--steps", "1", "--quiet",
            "--device", "cpu", *sets]
    refused = cli(*args)
    assert refused.exit_code == 1 and "only 6 of 8 videos are extracted" in single_line(refused.output)
    assert cli(*args, "--allow-partial").exit_code == 0
    embedded = cli("embed", "--run", str(tmp_path / "run"), "--quiet", "--device", "cpu", "--allow-partial")
    assert embedded.exit_code == 0 and "going on with them (--allow-partial)" in embedded.stderr
    assert cli("embed", "--run", str(tmp_path / "run"), "--quiet", "--device", "cpu").exit_code == 1
