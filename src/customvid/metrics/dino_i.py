"""DINO-I: subject fidelity, the mean over reference images of
cosine(reference DINO embedding, mean of the L2-normalised DINO embeddings of whole frames)."""

from __future__ import annotations

from customvid.metrics.base import register
from customvid.metrics.similarity import ReferenceSimilarity

METRIC = register(ReferenceSimilarity("dino_i", "DINO-I", backbone="dino", kind="frames"))
