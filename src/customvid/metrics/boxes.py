"""Box geometry shared by the box metrics: IoU, centroids, normalised centroid distance, crops.

Boxes are (x1, y1, x2, y2) in pixels with x2 > x1 and y2 > y1 (continuous coordinates: a box covering pixel
columns 3..5 is x1 = 3, x2 = 6). A row of NaN means "no box".
"""

from __future__ import annotations

import math

import numpy as np


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise IoU of two [N, 4] box arrays; 0 where either box is missing (NaN) or both are empty."""
    a = np.atleast_2d(np.asarray(a, dtype=np.float64))
    b = np.atleast_2d(np.asarray(b, dtype=np.float64))
    iw = np.minimum(a[:, 2], b[:, 2]) - np.maximum(a[:, 0], b[:, 0])
    ih = np.minimum(a[:, 3], b[:, 3]) - np.maximum(a[:, 1], b[:, 1])
    inter = np.clip(iw, 0, None) * np.clip(ih, 0, None)
    area = lambda x: np.clip(x[:, 2] - x[:, 0], 0, None) * np.clip(x[:, 3] - x[:, 1], 0, None)  # noqa: E731
    union = area(a) + area(b) - inter
    with np.errstate(invalid="ignore", divide="ignore"):
        iou = np.where(union > 0, inter / union, 0.0)
    return np.nan_to_num(iou, nan=0.0)


def box_centres(boxes: np.ndarray) -> np.ndarray:
    """[N, 2] centres (cx, cy) of [N, 4] boxes; NaN rows stay NaN."""
    boxes = np.atleast_2d(np.asarray(boxes, dtype=np.float64))
    return np.stack([(boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2], axis=1)


def centroid_distance(centres_a: np.ndarray, centres_b: np.ndarray, width: int, height: int) -> np.ndarray:
    """Row-wise distance between two [N, 2] centre arrays divided by the frame diagonal sqrt(W^2 + H^2), so it
    lies in [0, 1]; a missing (NaN) centre counts as the maximum, 1.0."""
    a = np.atleast_2d(np.asarray(centres_a, dtype=np.float64))
    b = np.atleast_2d(np.asarray(centres_b, dtype=np.float64))
    d = np.hypot(a[:, 0] - b[:, 0], a[:, 1] - b[:, 1]) / math.hypot(width, height)
    return np.where(np.isfinite(d), np.minimum(d, 1.0), 1.0)


def crop_box(frame: np.ndarray, box: np.ndarray) -> np.ndarray:
    """The pixels of `frame` [H, W, 3] inside `box`, rounded outwards to whole pixels and clipped to the frame
    (at least 1x1)."""
    h, w = frame.shape[:2]
    x1, y1, x2, y2 = (float(v) for v in box)
    c1 = min(max(int(math.floor(x1)), 0), w - 1)
    r1 = min(max(int(math.floor(y1)), 0), h - 1)
    c2 = max(min(int(math.ceil(x2)), w), c1 + 1)
    r2 = max(min(int(math.ceil(y2)), h), r1 + 1)
    return frame[r1:r2, c1:c2]
