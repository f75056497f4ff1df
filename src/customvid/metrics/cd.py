"""CD: per video, the mean over frames that have a target box of the distance between the detected and the
target box centres, divided by the frame diagonal sqrt(W^2 + H^2) (so CD lies in [0, 1]); a frame where the
detector finds nothing counts as the maximum, 1.0. Aggregate: mean over videos.

METHODS.md only says "normalised by the frame size"; we pick the diagonal so that the metric is isotropic in
pixels and bounded by 1. For a square frame the per-axis (x / W, y / H) convention gives sqrt(2) times our
value.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from customvid.metrics.base import EvalContext, MetricResult, register
from customvid.metrics.boxes import box_centres, centroid_distance
from customvid.metrics.records import EvalRecord


def video_centroid_distance(
    detected: np.ndarray, target: np.ndarray, width: int, height: int
) -> float | None:
    keep = np.isfinite(np.asarray(target, dtype=np.float64)).all(axis=1)
    if not keep.any():
        return None
    d = centroid_distance(
        box_centres(np.asarray(detected)[keep]), box_centres(np.asarray(target)[keep]), width, height
    )
    return float(d.mean())


class CentroidDistance:
    name = "cd"
    title = "CD"
    requires = ("detector", "target_boxes")
    higher_is_better = False

    def compute(self, records: Sequence[EvalRecord], ctx: EvalContext) -> MetricResult:
        values: list[float | None] = []
        for r in ctx.iter_records(records, desc="detect boxes"):
            if not ctx.has(r, "target_boxes"):
                values.append(None)
                continue
            values.append(video_centroid_distance(ctx.detections(r), r.target_boxes, r.width, r.height))
        return MetricResult.from_values(self.name, values)


METRIC = register(CentroidDistance())
