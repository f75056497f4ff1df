"""Exact masks for lossless world renders.

The fitted pose is only good to about 0.1 px, so its coverage >= 0.5 mask differs from the renderer's by a few
edge pixels. On a lossless render the pixels themselves say more: the renderer's coverage and ink are multiples
of 1/16 (4x4 supersampling), so each pixel is one of ~150 blends of the background, base and ink colours, and
the blends that reproduce it exactly bound its coverage (`lattice_read`). That settles nearly every pixel. Where
the ink is the base colour's own shade and the background lies on the same line (black, or grey under white), a
half-covered ink pixel and a quarter-covered base pixel look alike; in such frames the pose is searched until
re-rendering the read subject reproduces the frame pixel for pixel, and that render's own mask is the answer.
Frames that the read subject cannot explain exactly (noise, blur, compression, a generated video) keep the
probe's mask.
"""

from __future__ import annotations

import numpy as np

from customvid.world.render import SUPERSAMPLE, blend, composite, subject_colours
from customvid.world.spec import Subject

LEVELS = SUPERSAMPLE**2

# Random search around the fitted pose (cx, cy px, radius px, angle rad): Gaussian steps of this scale, shrunk
# by SHRINK after PATIENCE failures in a row and reset when they get too fine to move any edge. The error is
# piecewise constant (4x supersampled fills) with a zero region only ~0.02 px wide, where compass search stalls.
START_SCALE = np.array([0.1, 0.1, 0.1, 0.01])
RESET_SCALE = np.array([0.05, 0.05, 0.05, 0.005])
MIN_SCALE = 0.002
SHRINK = 0.7
PATIENCE = 12
MAX_EVALS = 1500
MAX_SUBJECT_SHARE = 0.5  # more of a frame off the background than this: no lossless render (and not worth reading)
MARGIN = 3  # px around the sprite: the window rendered and compared


class _Window:
    """The frame's crop around a pose, rendered and compared there only (5-10x cheaper than the full frame)."""

    def __init__(self, frame: np.ndarray, subject: Subject, bg: np.ndarray, pose: np.ndarray):
        h, w = frame.shape[:2]
        cx, cy, r = pose[:3]
        self.x0, self.y0 = int(np.clip(np.floor(cx - r) - MARGIN, 0, w)), int(np.clip(np.floor(cy - r) - MARGIN, 0, h))
        x1, y1 = int(np.clip(np.ceil(cx + r) + MARGIN, 0, w)), int(np.clip(np.ceil(cy + r) + MARGIN, 0, h))
        self.frame = frame[self.y0:y1, self.x0:x1].astype(np.int16)
        self.bg = bg[self.y0:y1, self.x0:x1]
        self.subject = subject
        self.shape = (h, w)

    def render(self, pose: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return composite(self.subject, self.bg, pose[0] - self.x0, pose[1] - self.y0, pose[2], pose[3])

    def error(self, pose: np.ndarray) -> int:
        return int(np.abs(self.render(pose)[0].astype(np.int16) - self.frame).sum())

    def full_mask(self, pose: np.ndarray) -> np.ndarray:
        mask = np.zeros(self.shape, bool)
        crop = self.render(pose)[1] >= 0.5
        mask[self.y0:self.y0 + crop.shape[0], self.x0:self.x0 + crop.shape[1]] = crop
        return mask


def fit_exact_pose(window: _Window, pose: np.ndarray, seed: int = 0) -> tuple[np.ndarray, int]:
    """The pose near `pose` (cx, cy, radius, angle) whose render comes closest to the window's frame, and its
    error (summed absolute grey levels; 0: it reproduces the frame exactly)."""
    rng = np.random.default_rng(seed)
    best = np.asarray(pose, np.float64)
    err = window.error(best)
    scale, fails = START_SCALE.copy(), 0
    for _ in range(MAX_EVALS):
        if err == 0:
            break
        trial = best + rng.normal(size=4) * scale
        e = window.error(trial)
        if e < err:
            best, err, fails = trial, e, 0
            continue
        fails += 1
        if fails >= PATIENCE:
            scale, fails = scale * SHRINK, 0
            if scale[0] < MIN_SCALE:
                scale = RESET_SCALE.copy()
    return best, err


def _blends(subject: Subject) -> tuple[np.ndarray, np.ndarray]:
    """Every (coverage, ink) pair the renderer can produce for this subject, as float32 [K] arrays."""
    a, i = np.meshgrid(np.arange(LEVELS + 1), np.arange(LEVELS + 1), indexing="ij")
    keep = i <= a if subject.texture != "solid" else i == 0
    return (a[keep] / np.float32(LEVELS)).astype(np.float32), (i[keep] / np.float32(LEVELS)).astype(np.float32)


def lattice_read(frame: np.ndarray, subject: Subject, bg: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """Masks (inside, ambiguous), bool [H, W], of one lossless frame of `subject` over bg: inside where every blend
    that reproduces the pixel has coverage >= 0.5, ambiguous where such blends fall on both sides. None when some
    pixel matches no blend: the frame is no lossless render of this subject."""
    base, ink_col = subject_colours(subject)
    alpha, ink = _blends(subject)
    inside = np.zeros(frame.shape[:2], bool)
    ambiguous = np.zeros(frame.shape[:2], bool)
    off = np.nonzero((frame != blend(bg, np.float32(0), np.float32(0), base, ink_col)).any(-1))
    if len(off[0]) == 0:
        return inside, ambiguous
    if len(off[0]) > MAX_SUBJECT_SHARE * inside.size:  # e.g. a colour-jittered frame: no pixel is background
        return None
    # same float32 arithmetic as the renderer, for every pixel against every blend: [N, K, 3]
    pred = blend(bg[off][:, None], alpha[None, :, None], ink[None, :, None], base, ink_col)
    match = (pred == frame[off][:, None]).all(-1)
    if not match.any(1).all():
        return None
    over = alpha[None] >= 0.5
    some_over, some_under = (match & over).any(1), (match & ~over).any(1)
    inside[off] = some_over & ~some_under
    ambiguous[off] = some_over & some_under
    return inside, ambiguous


def exact_masks(frames: np.ndarray, subject: Subject, bg: np.ndarray, centres: np.ndarray, scales: np.ndarray,
                angles: np.ndarray) -> dict[int, np.ndarray]:
    """{frame index: the renderer's coverage >= 0.5 mask} for the frames that are lossless renders of the subject
    posed near the given per-frame poses. Seeded per frame: the same frames give the same masks."""
    out = {}
    for f in np.nonzero(np.isfinite(scales))[0]:
        read = lattice_read(frames[f], subject, bg)
        if read is None:
            continue
        inside, ambiguous = read
        if not ambiguous.any():
            out[int(f)] = inside
            continue
        start = np.array([*centres[f], scales[f], angles[f]])
        window = _Window(frames[f], subject, bg, start)
        pose, err = fit_exact_pose(window, start, seed=int(f))
        # no exact pose found: the closest one still decides the pixels that the colours left open
        out[int(f)] = window.full_mask(pose) if err == 0 else inside | (ambiguous & window.full_mask(pose))
    return out
