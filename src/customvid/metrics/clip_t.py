"""CLIP-T: text-video alignment, cosine(text embedding, mean of L2-normalised CLIP frame embeddings)."""

from __future__ import annotations

from collections.abc import Sequence

from customvid.metrics.base import EvalContext, MetricResult, register
from customvid.metrics.records import EvalRecord
from customvid.metrics.similarity import text_video_similarity


class ClipT:
    name = "clip_t"
    title = "CLIP-T"
    requires = ("clip",)
    higher_is_better = True

    def compute(self, records: Sequence[EvalRecord], ctx: EvalContext) -> MetricResult:
        values = []
        for r in records:
            if not r.prompt.strip():
                values.append(None)  # nothing to align with
                continue
            values.append(
                text_video_similarity(ctx.text_features(r), ctx.image_features("clip", "frames", r))
            )
        return MetricResult.from_values(self.name, values)


METRIC = register(ClipT())
