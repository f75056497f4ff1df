"""mIoU: per video, the mean over frames that have a target box of IoU(detected box, target box); a frame
where the detector finds nothing scores 0. Aggregate: mean over videos. Boxes come from the context's
detector (the world probe by default)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from customvid.metrics.base import EvalContext, MetricResult, register
from customvid.metrics.boxes import box_iou
from customvid.metrics.records import EvalRecord


def video_miou(detected: np.ndarray, target: np.ndarray) -> float | None:
    """Mean IoU over the frames whose target box is present (None when there is none)."""
    keep = np.isfinite(np.asarray(target, dtype=np.float64)).all(axis=1)
    if not keep.any():
        return None
    return float(box_iou(np.asarray(detected)[keep], np.asarray(target)[keep]).mean())


class MeanIoU:
    name = "miou"
    title = "mIoU"
    requires = ("detector", "target_boxes")
    higher_is_better = True

    def compute(self, records: Sequence[EvalRecord], ctx: EvalContext) -> MetricResult:
        values: list[float | None] = []
        detected: list[list | None] = []
        for r in ctx.iter_records(records, desc="detect boxes"):
            if not ctx.has(r, "target_boxes"):
                values.append(None)
                detected.append(None)
                continue
            boxes = ctx.detections(r)
            values.append(video_miou(boxes, r.target_boxes))
            detected.append(boxes)
        return MetricResult.from_values(self.name, values, detected_boxes=detected)


METRIC = register(MeanIoU())
