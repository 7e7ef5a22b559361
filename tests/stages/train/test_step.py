"""One training step's loss (stages/train/step.py) in a world of one: the embedder, then the objective, as before
the embedder was split into its pooled convolutions and its head for the ranks' gather."""
from __future__ import annotations

import pytest
import torch

from vava.core.embedder import Embedder, EmbedderConfig
from vava.stages.train.data import FeatureBatch
from vava.stages.train.objectives import PairBatch, build_objective
from vava.stages.train.step import TrainStep


@pytest.mark.parametrize("objective_name", ["vava", "supervised"])
def test_step_loss_is_the_objective_of_the_embeddings(objective_name: str) -> None:
    generator = torch.Generator().manual_seed(0)
    pairs, frames, context = 2, 5, 2
    maps = torch.randn(pairs, 2, frames, context, 6, 3, 3, generator=generator).half()
    frame_indices = torch.arange(frames).repeat(pairs, 2, 1)
    batch = FeatureBatch(maps, frame_indices, torch.full((pairs, 2), 9), frame_indices % 3)
    torch.manual_seed(1)
    embedder = Embedder(6, EmbedderConfig(conv_channels=8, fc_channels=8, embedding_dim=4, dropout=0.5))
    objective = build_objective(objective_name, {"embedding_dim": 4, **({"num_classes": 3}
                                                                        if objective_name == "supervised" else {})})
    torch.manual_seed(2)  # the same dropout masks for both
    loss, components = TrainStep(embedder, objective, autocast=False)(batch, 3)
    torch.manual_seed(2)
    embeddings = embedder(maps.flatten(0, 2).float()).view(pairs, 2, frames, -1)
    expected, expected_components = objective(PairBatch(embeddings, frame_indices, batch.video_lengths, batch.labels,
                                                        3))
    assert float(loss.detach()) == float(expected.detach()) and torch.isfinite(loss)
    assert components.keys() == expected_components.keys()
    loss.backward()
    assert all(p.grad is not None for p in embedder.parameters())  # the loss reaches every layer
