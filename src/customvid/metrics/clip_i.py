"""CLIP-I: subject fidelity, the mean over reference images of
cosine(reference CLIP embedding, mean of the L2-normalised CLIP embeddings of whole frames)."""

from __future__ import annotations

from customvid.metrics.base import register
from customvid.metrics.similarity import ReferenceSimilarity

METRIC = register(ReferenceSimilarity("clip_i", "CLIP-I", backbone="clip", kind="frames"))
