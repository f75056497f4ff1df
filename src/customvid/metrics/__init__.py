"""Evaluation suite: the papers' metrics (CLIP-T, CLIP-I, DINO-I, R-CLIP, R-DINO, temporal consistency, VBench
subject consistency and dynamic degree, mIoU, CD) plus ground-truth world scores from the world probe.

Typical use::

    from customvid.metrics import EvalRecord, evaluate_records, load_manifest, write_report

    records = load_manifest("generated.jsonl")
    report = evaluate_records(records, clip="ckpt/clip-vit-b32", dino="ckpt/dino-vits16")
    write_report(report, "report/")

Metrics share one interface (`Metric`: name, title, requires, higher_is_better, compute(records, ctx) ->
MetricResult(per_video, aggregate, skipped_reason)) and a registry (`get_metric`, `all_metrics`, `register`).
A metric whose backbone, probe or data is missing is skipped with a reason, never reported as zero.

Definitions follow METHODS.md section 6; choices it leaves open and deviations (details in each module):
- CLIP-T / CLIP-I / DINO-I use the mean of L2-normalised frame embeddings; R-CLIP / R-DINO embed the crop
  inside the target box (rounded outwards to whole pixels), leaving out frames without a target box.
- Subject consistency aggregates frame-pair-weighted, as VBench does (mean over videos when lengths agree).
- Dynamic degree: OpenCV Farneback instead of RAFT (pyr_scale 0.5, levels 3, winsize 15, iterations 3,
  poly_n 5, poly_sigma 1.2); frames subsampled to ~8 fps when the fps is known (VBench); the number of pairs
  needed is at least 1.
- CD is normalised by the frame diagonal (in [0, 1]); a frame with no detection counts IoU 0 and CD 1.
- mIoU, CD and the world scores aggregate as the mean over videos of per-video means over frames.
- World scores: a probe reading of None counts as wrong; trajectory error compares box centres (probe box vs
  target box, or the box rendered from the subject record), normalised like CD.
"""

from customvid.metrics.backbones import ClipBackbone, DinoBackbone, load_clip, load_dino
from customvid.metrics.base import (
    EvalContext,
    Metric,
    MetricResult,
    all_metrics,
    get_metric,
    metric_names,
    register,
)
from customvid.metrics.boxes import box_centres, box_iou, centroid_distance
from customvid.metrics.detector import Detector, ProbeDetector
from customvid.metrics.manifest import ManifestError, load_manifest
from customvid.metrics.records import EvalRecord
from customvid.metrics.report import write_report
from customvid.metrics.runner import EvalReport, evaluate_records

__all__ = [
    "ClipBackbone",
    "Detector",
    "DinoBackbone",
    "EvalContext",
    "EvalRecord",
    "EvalReport",
    "ManifestError",
    "Metric",
    "MetricResult",
    "ProbeDetector",
    "all_metrics",
    "box_centres",
    "box_iou",
    "centroid_distance",
    "evaluate_records",
    "get_metric",
    "load_clip",
    "load_dino",
    "load_manifest",
    "metric_names",
    "register",
    "write_report",
]
