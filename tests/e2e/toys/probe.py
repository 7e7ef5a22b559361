"""A toy probe: the mean p-norm of the val frames' embeddings (README, Extending)."""
from __future__ import annotations

import numpy as np

from vava.stages.evaluate.probes.base import AT_LEAST_ONE, Column, Option, Probe, fixed, mean


class MeanNorm(Probe):
    name = "toy"
    options = (Option("norm_order", 2, "p of the p-norm.", check=AT_LEAST_ONE),)  # -> --norm-order

    def run(self, action):
        norms = [np.linalg.norm(v.embeddings, ord=self.o.norm_order, axis=1) for v in action.val]
        return {"mean_norm": float(np.concatenate(norms).mean())}

    def aggregate(self, per_action):
        return mean(per_action, "mean_norm")

    @classmethod
    def columns(cls, options):
        return [Column("Mean norm", lambda values: fixed(values.get("mean_norm")))]
