"""Texture by fitting the renderer's own ink patterns at the fitted pose, pooled over the whole video.

Inside the subject every pixel mixes background, base colour c1 and ink colour c2. With the coverage a of the
fitted outline (blurred as the video is) the background share is removed, and the ink fraction t is read off
the c1 -> c2 line. Each pattern predicts an ink map m at the frame's pose; t ~ b0 + b1 * m is fitted by least
squares (blur and compression only lower the contrast b1). The pattern's angle relative to the shape's tracked
angle is one choice for the whole video (patterns turn with the sprite), which keeps small noisy frames from
fitting noise; the evidence (variance explained) is pooled over frames. For two-colour patterns the sign of
b1 says which colour is the ink.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from customvid.world import vocab
from customvid.world.probe.shape import SYMMETRY, geometry, rotation
from customvid.world.shapes import texture_ink

BASE_PATTERNS = ["striped", "dotted"]  # ink = a darker shade of the base colour
TWO_COLOUR_PATTERNS = list(vocab.NOVEL_TEXTURES)
FREE_ANGLES = np.deg2rad(np.arange(-20.0, 20.1, 5.0))  # pattern angles tried on rotation-invariant shapes
# A pattern is there when it explains enough of the ink-fraction variance (share) with enough contrast (b1, ~1
# when the blurred prediction matches); tuned on blurred, compressed, noisy renders, where small sprites'
# patterns are faint but solid sprites' ink fraction is flat.
MIN_CONTRAST = 0.1  # pooled |b1| below this: no pattern
MIN_EXPLAINED = 0.1  # pooled share of variance explained
MIN_EVIDENCE = 0.06  # share * min(b1, 1)
MIN_PIXELS = 6  # inside pixels a frame needs to count
INSIDE = 0.75  # fitted coverage above which a pixel is read for texture
SUB = np.array([0.25, 0.75])  # 2 x 2 sub-pixel samples


@dataclass
class FrameView:
    """The pixels of one frame that texture is read from, and the pose they are read at."""

    ys: np.ndarray
    xs: np.ndarray
    t: np.ndarray  # ink fraction per pixel
    own: np.ndarray  # [P, 3] the pixels' own colour, background share removed
    centroid: np.ndarray
    radius: float
    angle: float  # tracked shape angle
    window: tuple[int, int, int, int]  # y0, x0, y1, x1: where predictions are drawn (then blurred)
    blur: float  # px: the video's blur, applied to predicted patterns too


@dataclass
class TextureReading:
    texture: str
    swapped: bool  # two-colour patterns: c1 is the ink and c2 the base
    share: float  # pooled variance explained by the chosen pattern (0 for solid)
    frame_textures: dict[int, str]  # frame -> its own reading at the chosen angle
    angle_offset: float  # chosen pattern angle relative to the tracked shape angle (absolute for k = 0)
    ink_shift: np.ndarray | None = None  # [3] colour change from base to ink where the pattern puts ink


def own_colour(pixels: np.ndarray, bg: np.ndarray, cover: np.ndarray) -> np.ndarray:
    """Each pixel's [P, 3] own colour once its background share (1 - cover) is removed."""
    cover = np.clip(cover, 0.05, 1.0)[:, None]
    return (pixels - bg * (1 - cover)) / cover


def ink_fraction(own: np.ndarray, c1: np.ndarray, c2: np.ndarray) -> np.ndarray:
    """Where each colour [P, 3] lies on the line from base c1 (0) to ink c2 (1)."""
    axis = c2 - c1
    return (own - c1) @ axis / max(float(axis @ axis), 1.0)


def frame_view(x: np.ndarray, bg: np.ndarray, cover: np.ndarray, c1: np.ndarray, c2: np.ndarray,
               centroid: np.ndarray, radius: float, angle: float, blur: float) -> FrameView | None:
    ys, xs = np.nonzero(cover >= INSIDE)
    if len(ys) < MIN_PIXELS:
        return None
    own = own_colour(x[ys, xs], bg[ys, xs], cover[ys, xs])
    t = ink_fraction(own, c1, c2)
    pad = int(np.ceil(2 * blur))
    h, w = cover.shape
    window = (max(0, ys.min() - pad), max(0, xs.min() - pad), min(h, ys.max() + pad + 1), min(w, xs.max() + pad + 1))
    return FrameView(ys, xs, np.clip(t, -0.5, 1.5), own, centroid, radius, angle, window, blur)


def _offsets(shape: str, only: float | None = None) -> tuple[np.ndarray, bool]:
    """Candidate pattern angles: offsets from the tracked angle (k-fold shapes), or absolute angles; just
    `only` when given."""
    k = SYMMETRY[shape]
    if only is not None:
        return np.array([only]), k == 0
    if k == 0:
        return FREE_ANGLES, True
    return 2 * np.pi * np.arange(k) / k, False


def predicted_ink(texture: str, ys: np.ndarray, xs: np.ndarray, origins: np.ndarray, radius: float,
                  angles: np.ndarray, supersample: bool = True) -> np.ndarray:
    """Ink coverage [A, P] of pixels (ys, xs) for the sprite at each (origin [A, 2], angle [A]), averaged over
    2 x 2 sub-pixel samples (or the pixel centre only)."""
    sub = SUB if supersample else np.array([0.5])
    sy, sx = np.meshgrid(sub, sub, indexing="ij")
    origins = np.broadcast_to(np.asarray(origins, float), (len(angles), 2))
    px = (xs[None, :, None] + sx.ravel()[None, None, :]) - origins[:, 0, None, None]  # [A, P, 4]
    py = (ys[None, :, None] + sy.ravel()[None, None, :]) - origins[:, 1, None, None]
    c, s = np.cos(angles)[:, None, None], np.sin(angles)[:, None, None]
    u = (c * px + s * py) / radius  # the renderer's sprite coordinates
    v = (-s * px + c * py) / radius
    return texture_ink(texture, u, v).mean(axis=2)


def _frame_stats(view: FrameView, shape: str, texture: str,
                 only: float | None = None) -> tuple[np.ndarray, np.ndarray, float, np.ndarray]:
    """Per candidate angle: covariance sum of m with t, variance sum of m; t's variance sum; and the centred
    predictions m [A, P]."""
    offsets, absolute = _offsets(shape, only)
    angles = offsets if absolute else view.angle + offsets
    c = geometry(shape).centroid
    origins = np.stack([view.centroid - view.radius * (rotation(a) @ c) for a in angles])
    if view.blur > 0:  # draw over the window, blur as the video is, read at the inside pixels
        y0, x0, y1, x1 = view.window
        gy, gx = np.mgrid[y0:y1, x0:x1]
        # under blur, sub-pixel sampling changes nothing the blur does not swamp
        grid = predicted_ink(texture, gy.ravel(), gx.ravel(), origins, view.radius, angles, view.blur < 0.5)
        grid = grid.reshape(len(angles), y1 - y0, x1 - x0).astype(np.float32)
        m = np.stack([cv2.GaussianBlur(g, (0, 0), view.blur)[view.ys - y0, view.xs - x0] for g in grid])
    else:
        m = predicted_ink(texture, view.ys, view.xs, origins, view.radius, angles)
    mc = m - m.mean(axis=1, keepdims=True)
    tc = view.t - view.t.mean()
    return mc @ tc, (mc**2).sum(axis=1), float((tc**2).sum()), mc


def classify_texture(views: dict[int, FrameView], shape: str, two_colour: bool,
                     offset: float | None = None) -> TextureReading:
    """The video's texture from per-frame views (frame index -> view); offset fixes the pattern angle (as
    TextureReading.angle_offset) instead of searching for it."""
    patterns = TWO_COLOUR_PATTERNS if two_colour else BASE_PATTERNS
    offsets, _ = _offsets(shape, offset)
    if not views:
        return TextureReading(patterns[0] if two_colour else "solid", False, 0.0, {}, 0.0)
    stats = {p: [_frame_stats(v, shape, p, offset) for v in views.values()] for p in patterns}
    sst = sum(s[2] for s in stats[patterns[0]])
    best = ("solid", 0.0, 0.0, 0)  # pattern, share, b1, offset index
    for p in patterns:
        sxy = np.sum([s[0] for s in stats[p]], axis=0)
        sxx = np.sum([s[1] for s in stats[p]], axis=0)
        b1 = sxy / np.maximum(sxx, 1e-9)
        # pooled explained variance, each frame at the shared angle
        share = np.sum([s[0] ** 2 / np.maximum(s[1], 1e-9) for s in stats[p]], axis=0) / max(sst, 1e-9)
        share = np.where((np.abs(b1) if two_colour else b1) >= MIN_CONTRAST, share, 0.0)
        # a half turn of stripes (a quarter turn of checks) swaps the colours: ties go to the smallest offset
        tied = share >= share.max() - 0.02
        j = int(np.argmin(np.where(tied, np.abs(np.angle(np.exp(1j * offsets))), np.inf)))
        if share[j] > best[1]:
            best = (p, float(share[j]), float(b1[j]), j)
    pattern, share, b1, j = best
    if pattern != "solid" and (share < MIN_EXPLAINED or share * min(abs(b1), 1.0) < MIN_EVIDENCE):
        pattern = "solid"
    if two_colour and pattern == "solid":  # two colours but no clear pattern: the best guess still
        pattern = max(patterns, key=lambda p: _pooled_share(stats[p], j))
    per_frame = _per_frame(views, stats, patterns, j, two_colour)
    shift = None
    if pattern != "solid":  # pooled regression of the pixels' own colours on the pattern
        num = sum(s[3][j] @ (v.own - v.own.mean(0)) for s, v in zip(stats[pattern], views.values(), strict=True))
        shift = num / max(sum(s[1][j] for s in stats[pattern]), 1e-9)
    return TextureReading(pattern, two_colour and b1 < 0, share, per_frame, float(offsets[j]), shift)


def _pooled_share(stats: list, j: int) -> float:
    sst = sum(s[2] for s in stats)
    return float(sum(s[0][j] ** 2 / max(s[1][j], 1e-9) for s in stats) / max(sst, 1e-9))


def _per_frame(views: dict[int, FrameView], stats: dict, patterns: list[str], j: int,
               two_colour: bool) -> dict[int, str]:
    out = {}
    for i, f in enumerate(views):
        label, top = ("solid" if not two_colour else patterns[0]), -1.0
        for p in patterns:
            sxy, sxx, sst = stats[p][i][0][j], stats[p][i][1][j], stats[p][i][2]
            b1 = sxy / max(sxx, 1e-9)
            share = sxy**2 / max(sxx, 1e-9) / max(sst, 1e-9)
            strong = share >= MIN_EXPLAINED and share * min(abs(b1), 1.0) >= MIN_EVIDENCE
            ok = (abs(b1) if two_colour else b1) >= MIN_CONTRAST and (strong or two_colour)
            if ok and share > top:
                label, top = p, share
        out[f] = label
    return out
