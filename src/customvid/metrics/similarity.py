"""Embedding-similarity formulas (METHODS.md section 6) and the shared metric behind CLIP-I, DINO-I,
R-CLIP and R-DINO. All inputs are feature arrays; the formulas normalise them themselves."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from customvid.metrics.base import EvalContext, MetricResult, cosine, l2_normalise
from customvid.metrics.records import EvalRecord


def mean_frame_embedding(frame_feats: np.ndarray) -> np.ndarray:
    """Mean of the L2-normalised frame embeddings [F, D] -> [D] (not re-normalised; cosine does that)."""
    return l2_normalise(frame_feats).mean(axis=0)


def text_video_similarity(text_feat: np.ndarray, frame_feats: np.ndarray) -> float:
    """CLIP-T: cosine(text embedding, mean of L2-normalised frame embeddings)."""
    return cosine(text_feat, mean_frame_embedding(frame_feats))


def reference_video_similarity(ref_feats: np.ndarray, frame_feats: np.ndarray) -> float:
    """CLIP-I / DINO-I (and R- on region crops): mean over reference images of
    cosine(reference embedding, mean of L2-normalised frame embeddings)."""
    mean = mean_frame_embedding(frame_feats)
    return float(np.mean([cosine(r, mean) for r in np.atleast_2d(ref_feats)]))


class ReferenceSimilarity:
    """cosine(reference image, mean frame) on whole frames (`kind="frames"`) or on the crops inside the target
    box (`kind="regions"`; frames whose target box is missing are left out)."""

    higher_is_better = True

    def __init__(self, name: str, title: str, backbone: str, kind: str):
        self.name, self.title, self.backbone, self.kind = name, title, backbone, kind
        self.requires = (backbone, "reference_images") + (("target_boxes",) if kind == "regions" else ())

    def compute(self, records: Sequence[EvalRecord], ctx: EvalContext) -> MetricResult:
        values: list[float | None] = []
        for r in records:
            if not ctx.has(r, "reference_images") or (
                self.kind == "regions" and not ctx.has(r, "target_boxes")
            ):
                values.append(None)
                continue
            frames = ctx.image_features(self.backbone, self.kind, r)
            refs = ctx.image_features(self.backbone, "references", r)
            values.append(
                None if frames is None or refs is None else reference_video_similarity(refs, frames)
            )
        return MetricResult.from_values(self.name, values)
