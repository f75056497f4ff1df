"""VBench dynamic degree with OpenCV Farneback optical flow (VBench uses RAFT, which needs weights).

VBench's rule, per video:
- frames are first subsampled to about 8 fps: every round(fps / 8)-th frame (at least every frame) when the
  video's fps is known; world clips are 8 fps, so nothing is dropped for them;
- for each consecutive pair, the flow magnitude's top 5% (int(H*W*0.05) largest values) are averaged;
- the video is dynamic when at least count_num = round(4 * n / 16) pairs score above 6.0 * min(H, W) / 256,
  n = number of (subsampled) frames, Python's round as in VBench;
- the score is the fraction of dynamic videos (per video: 1.0 dynamic, 0.0 static).
Deviations: Farneback instead of RAFT, flow on grayscale frames at their own size (no padding to multiples of
8), and count_num is at least 1 (VBench's round(4 * 2 / 16) = 0 would call every 2-frame video dynamic).
Farneback parameters (OpenCV's documented example): pyr_scale 0.5, levels 3, winsize 15, iterations 3,
poly_n 5, poly_sigma 1.2, flags 0.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from customvid.metrics.base import EvalContext, MetricResult, register
from customvid.metrics.records import EvalRecord

FARNEBACK = dict(pyr_scale=0.5, levels=3, winsize=15, iterations=3, poly_n=5, poly_sigma=1.2, flags=0)
TOP_FRACTION = 0.05
THRESHOLD_AT_256 = 6.0


def farneback_flow(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Dense flow [H, W, 2] from RGB uint8 frame a to b."""
    ga = cv2.cvtColor(np.ascontiguousarray(a), cv2.COLOR_RGB2GRAY)
    gb = cv2.cvtColor(np.ascontiguousarray(b), cv2.COLOR_RGB2GRAY)
    return cv2.calcOpticalFlowFarneback(ga, gb, None, **FARNEBACK)


def top_magnitude_score(flow: np.ndarray) -> float:
    """Mean of the largest 5% of flow magnitudes (VBench's per-pair score)."""
    mag = np.hypot(flow[..., 0], flow[..., 1]).ravel()
    k = max(1, int(mag.size * TOP_FRACTION))
    return float(np.mean(np.sort(mag)[::-1][:k]))


def subsample_to_8fps(frames: np.ndarray, fps: float | None) -> np.ndarray:
    if not fps:
        return frames
    return frames[:: max(1, round(fps / 8))]


def dynamic_threshold(height: int, width: int) -> float:
    return THRESHOLD_AT_256 * min(height, width) / 256.0


def required_pairs(n_frames: int) -> int:
    return max(1, round(4 * n_frames / 16))


def pair_scores(frames: np.ndarray) -> list[float]:
    return [top_magnitude_score(farneback_flow(a, b)) for a, b in zip(frames[:-1], frames[1:], strict=True)]


def is_dynamic(scores: Sequence[float], n_frames: int, height: int, width: int) -> bool:
    thres = dynamic_threshold(height, width)
    return sum(s > thres for s in scores) >= required_pairs(n_frames)


class DynamicDegree:
    name = "dynamic_degree"
    title = "Dynamic degree"
    requires = ("multi_frame",)
    higher_is_better = True

    def compute(self, records: Sequence[EvalRecord], ctx: EvalContext) -> MetricResult:
        values: list[float | None] = []
        all_scores: list[list[float] | None] = []
        for r in ctx.iter_records(records, desc="optical flow"):
            frames = subsample_to_8fps(r.frames, r.fps)
            if len(frames) < 2:
                values.append(None)
                all_scores.append(None)
                continue
            scores = pair_scores(frames)
            all_scores.append(scores)
            values.append(1.0 if is_dynamic(scores, len(frames), r.height, r.width) else 0.0)
        return MetricResult.from_values(self.name, values, pair_scores=all_scores)


METRIC = register(DynamicDegree())
