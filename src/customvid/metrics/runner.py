"""Run a set of metrics over a set of records: one context (lazy backbones, shared feature and probe caches),
every metric computed or skipped with its reason."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field

from customvid.errors import CustomvidError
from customvid.metrics.base import EvalContext, Metric, MetricResult, all_metrics, get_metric
from customvid.metrics.records import EvalRecord


@dataclass
class EvalReport:
    records: list[EvalRecord]
    metrics: list[Metric]
    results: dict[str, MetricResult]
    settings: dict = field(default_factory=dict)

    def skipped(self) -> dict[str, str]:
        return {n: r.skipped_reason for n, r in self.results.items() if r.skipped_reason is not None}

    def aggregates(self) -> dict[str, float | None]:
        return {n: r.aggregate for n, r in self.results.items()}


def select_metrics(names: Sequence[str] | None) -> list[Metric]:
    if not names:
        return all_metrics()
    out = []
    for name in names:
        try:
            out.append(get_metric(name))
        except KeyError as err:
            raise CustomvidError(str(err.args[0])) from None
    return out


def evaluate_records(
    records: Sequence[EvalRecord],
    metrics: Sequence[str | Metric] | None = None,
    *,
    clip=None,
    dino=None,
    detector="probe",
    batch_size: int = 32,
    device: str = "cpu",
    progress: bool = False,
) -> EvalReport:
    """Score `records` with `metrics` (names or Metric objects; default: all registered).

    clip / dino: a local checkpoint folder (loaded on first use), a backbone object, or None (those metrics
    are skipped with a reason). detector: "probe" (default), a Detector object, "module:Name", or None.
    """
    records = list(records)
    chosen = (
        [select_metrics([m])[0] if isinstance(m, str) else m for m in metrics] if metrics else all_metrics()
    )
    ctx = EvalContext(
        records,
        clip=clip,
        dino=dino,
        detector=detector,
        batch_size=batch_size,
        device=device,
        progress=progress,
    )
    results: dict[str, MetricResult] = {}
    for metric in chosen:
        reason = ctx.skip_reason(metric, records)
        if reason is not None:
            results[metric.name] = MetricResult.skipped(metric.name, len(records), reason)
        else:
            result = metric.compute(records, ctx)
            if len(result.per_video) != len(records):
                raise RuntimeError(
                    f"metric {metric.name!r} returned {len(result.per_video)} values "
                    f"for {len(records)} videos"
                )
            results[metric.name] = result
    settings = {
        "clip": _describe(clip),
        "dino": _describe(dino),
        "detector": _describe(detector),
        "batch_size": batch_size,
        "device": device,
    }
    return EvalReport(records, chosen, results, settings)


def _describe(obj) -> str | None:
    """A path or name as given; an object by its class name."""
    if obj is None or isinstance(obj, str):
        return obj
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    return type(obj).__name__
