"""The loss of one training step: the embedder and the objective as one module (what DistributedDataParallel
wraps under torchrun)."""
from __future__ import annotations

import torch
from torch import Tensor, nn

from vava.core.embedder import Embedder
from vava.stages.train.data import FeatureBatch
from vava.stages.train.distributed import gather_rows
from vava.stages.train.objectives import Objective, PairBatch


class TrainStep(nn.Module):
    """Embeds this rank's part of a step's batch and returns the objective's loss over the global batch.

    The pooled convolution features of every rank are gathered before the fully connected head, so the
    head, its dropout and the objective see exactly the single-process batch (`vava.stages.train.distributed`).
    In a world of one the gathers are no-ops and this is the embedder followed by the objective.
    """

    def __init__(self, embedder: Embedder, objective: Objective, autocast: bool):
        super().__init__()
        self.embedder, self.objective, self.autocast = embedder, objective, autocast

    def forward(self, batch: FeatureBatch, step: int) -> tuple[Tensor, dict[str, Tensor]]:
        with torch.autocast(batch.maps.device.type, dtype=torch.bfloat16, enabled=self.autocast):
            maps = batch.maps.flatten(0, 2).float()  # [b*2*T, K, C, H, W]
            embeddings = self.embedder.head(gather_rows(self.embedder.pool(maps)))
        frame_indices = gather_rows(batch.frame_indices)  # [B, 2, T]: the global batch's
        return self.objective(PairBatch(embeddings.float().view(*frame_indices.shape, -1), frame_indices,
                                        gather_rows(batch.video_lengths), gather_rows(batch.labels), step))
