"""VBench subject consistency: DINO features, per video
    S = 1/(F-1) * sum_{t=2..F} ( max(0, cos(f_{t-1}, f_t)) + max(0, cos(f_1, f_t)) ) / 2.

Aggregate as VBench computes it: the sum of all per-pair terms over all videos divided by the total number of
pairs (a frame-pair-weighted mean; equal to the mean over videos when all have the same length). VBench uses
DINO ViT-B/16 with its own resize; we use whatever DINO folder is given, with our DINO preprocessing.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from customvid.metrics.base import EvalContext, MetricResult, l2_normalise, register
from customvid.metrics.records import EvalRecord


def subject_consistency_terms(frame_feats: np.ndarray) -> np.ndarray:
    """The F-1 per-pair terms (max(0, cos(f_{t-1}, f_t)) + max(0, cos(f_1, f_t))) / 2."""
    f = l2_normalise(frame_feats)
    if len(f) < 2:
        raise ValueError("subject consistency needs at least two frames")
    prev = np.maximum(0.0, np.sum(f[:-1] * f[1:], axis=1))
    first = np.maximum(0.0, f[1:] @ f[0])
    return (prev + first) / 2


def subject_consistency_score(frame_feats: np.ndarray) -> float:
    return float(np.mean(subject_consistency_terms(frame_feats)))


class SubjectConsistency:
    name = "subject_consistency"
    title = "Subject consistency"
    requires = ("dino", "multi_frame")
    higher_is_better = True

    def compute(self, records: Sequence[EvalRecord], ctx: EvalContext) -> MetricResult:
        values: list[float | None] = []
        total, count = 0.0, 0
        for r in records:
            if r.num_frames < 2:
                values.append(None)
                continue
            terms = subject_consistency_terms(ctx.image_features("dino", "frames", r))
            values.append(float(terms.mean()))
            total += float(terms.sum())
            count += len(terms)
        result = MetricResult.from_values(self.name, values)
        result.aggregate = total / count if count else None
        return result


METRIC = register(SubjectConsistency())
