"""R-DINO: subject fidelity, the mean over reference images of
cosine(reference DINO embedding, mean of the L2-normalised DINO embeddings of the frame region inside the
target box) (frames without a target box are left out)."""

from __future__ import annotations

from customvid.metrics.base import register
from customvid.metrics.similarity import ReferenceSimilarity

METRIC = register(ReferenceSimilarity("r_dino", "R-DINO", backbone="dino", kind="regions"))
