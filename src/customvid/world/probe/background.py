"""Which of the world's deterministic backgrounds a video shows, and a per-video model of it.

Each candidate background image is compared with block-averaged frames (block means suppress noise and keep the
tile pattern); a per-channel offset absorbs colour jitter, and a penalty on that offset picks among plain colours.
Medians over blocks ignore the subject, which never covers most of a frame.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from customvid.world import vocab
from customvid.world.render import background_image

OFFSET_WEIGHT = 0.6  # how much a global colour shift costs relative to a structural mismatch
# Beyond these (grey levels) the best candidate is not the background, only the model to subtract: colour
# jitter of +-15% shifts a background by <= 24 and leaves <= 10 of structure (measured on degraded renders).
MAX_OFFSET = 40.0
MAX_SPREAD = 20.0


@dataclass
class BackgroundFit:
    name: str | None  # None when even the best candidate is too far off to be that background
    image: np.ndarray  # float32 [H, W, 3]: the best candidate plus the fitted colour offset
    noise: float  # robust per-channel noise sigma (grey levels) of the frames around the model
    score: float  # lower is better: structural mismatch + weighted offset
    scores: dict[str, float]
    offset: float  # size of the fitted colour shift
    spread: float  # median block distance left after the shift

    @property
    def margin(self) -> float:
        """0..1: how much better the chosen candidate fits than the runner-up."""
        ranked = sorted(self.scores.values())
        return 1.0 - ranked[0] / ranked[1] if len(ranked) > 1 and ranked[1] > 0 else 1.0


def _blocks(x: np.ndarray, b: int) -> np.ndarray:
    """Mean over b x b blocks of the last two spatial axes of [..., H, W, C] (edges cropped)."""
    h, w = x.shape[-3] // b * b, x.shape[-2] // b * b
    x = x[..., :h, :w, :]
    return x.reshape(*x.shape[:-3], h // b, b, w // b, b, x.shape[-1]).mean(axis=(-4, -2))


def _candidate_fit(blk: np.ndarray, cand: np.ndarray) -> tuple[np.ndarray, float]:
    """Per-channel colour offset and remaining median distance of blocks [..., 3] from a candidate's blocks."""
    resid = (blk - cand).reshape(-1, 3)
    offset = np.median(resid, axis=0)
    return offset, float(np.median(np.linalg.norm(resid - offset, axis=1)))


def fit_background(frames: np.ndarray) -> BackgroundFit:
    """frames: float32 [F, H, W, 3]."""
    _, h, w, _ = frames.shape
    b = max(1, min(h, w) // 16)
    blk = _blocks(frames, b)
    fits = {name: _candidate_fit(blk, _blocks(background_image(name, w, h), b)) for name in vocab.BACKGROUNDS}
    scores = {name: spread + OFFSET_WEIGHT * float(np.linalg.norm(off)) for name, (off, spread) in fits.items()}
    name = min(scores, key=scores.get)
    offset, spread = fits[name]
    image = (background_image(name, w, h) + offset).astype(np.float32)
    size = float(np.linalg.norm(offset))
    known = size <= MAX_OFFSET and spread <= MAX_SPREAD
    return BackgroundFit(name if known else None, image, _noise_sigma(frames, image), scores[name], scores, size,
                         spread)


def _noise_sigma(frames: np.ndarray, image: np.ndarray) -> float:
    """Robust sigma of the high-pass residual: immune to the subject, to the tile edges and to slow shading."""
    resid = frames[..., 1] - image[..., 1]
    hp = resid - np.stack([cv2.blur(r, (3, 3)) for r in resid])
    mad = np.median(np.abs(hp))
    return float(1.4826 * mad / np.sqrt(8 / 9))  # subtracting a 3x3 mean keeps 8/9 of white noise's variance
