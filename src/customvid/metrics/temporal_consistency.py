"""Temporal consistency (T.Cons): mean CLIP cosine similarity between consecutive frames."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from customvid.metrics.base import EvalContext, MetricResult, l2_normalise, register
from customvid.metrics.records import EvalRecord


def temporal_consistency_score(frame_feats: np.ndarray) -> float:
    """mean over t = 1..F-1 of cos(f_{t-1}, f_t); needs F >= 2."""
    f = l2_normalise(frame_feats)
    if len(f) < 2:
        raise ValueError("temporal consistency needs at least two frames")
    return float(np.mean(np.sum(f[:-1] * f[1:], axis=1)))


class TemporalConsistency:
    name = "temporal_consistency"
    title = "T.Cons"
    requires = ("clip", "multi_frame")
    higher_is_better = True

    def compute(self, records: Sequence[EvalRecord], ctx: EvalContext) -> MetricResult:
        values = [
            temporal_consistency_score(ctx.image_features("clip", "frames", r)) if r.num_frames >= 2 else None
            for r in records
        ]
        return MetricResult.from_values(self.name, values)


METRIC = register(TemporalConsistency())
