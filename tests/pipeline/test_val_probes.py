"""The evaluator `vava train --eval-every` uses: the embed stage's embeddings scored by the evaluate stage's probes."""
from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from tests.stages.train.helpers import config
from tests.stages.train.test_loop import losses
from vava.cache.store import FeatureSet
from vava.core.run_folder import load_embedder
from vava.pipeline.val_probes import ValProbes
from vava.stages.embed.run import embed
from vava.stages.evaluate.report import evaluate_embeddings
from vava.stages.train.loop import train


def test_scores_are_those_of_embed_and_evaluate(toy_features: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    train(toy_features, run, config("steps=2"), progress=False)
    scratch = run / "scratch.h5"
    embedder = load_embedder(run).build(torch.device("cpu"))
    feature_set = FeatureSet.open(toy_features)
    scores = ValProbes()(embedder, feature_set, feature_set.videos(), scratch)
    assert not scratch.exists()  # removed once scored
    report = evaluate_embeddings(embed(run, progress=False), tasks=("classification", "progress", "kendall"),
                                 fractions=(1.0,))
    assert list(scores) == ["classification", "progress", "kendall"]
    assert scores["classification"] == pytest.approx(report["results"]["classification"]["1.0"], abs=1e-9)
    assert scores["progress"] == pytest.approx(report["results"]["progress"], abs=1e-9)
    assert report["results"]["kendall"] is None and math.isnan(scores["kendall"])  # one val video per action


def test_scoring_leaves_training_as_it_is(toy_features: Path, tmp_path: Path) -> None:
    train(toy_features, tmp_path / "plain", config("steps=3"), progress=False)
    train(toy_features, tmp_path / "scored", config("steps=3", "eval_every=1"), progress=False, evaluator=ValProbes())
    assert losses(tmp_path / "scored") == losses(tmp_path / "plain")
