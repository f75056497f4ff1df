"""Texture by fitting the renderer's own ink patterns at the fitted pose.

Inside the subject every pixel is a mix of base colour c1 and ink colour c2; its ink fraction t is read off the
c1 -> c2 line. Each texture predicts an ink map m at the frame's pose (origin, radius, angle - all angles that
the shape's symmetry allows, since stripes break it); t ~ b0 + b1 * m is fitted by least squares, so blur and
compression (which lower the contrast b1) do not matter, and for two-colour textures the sign of b1 says which
colour is the ink.
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
FREE_ANGLES = np.deg2rad(np.arange(-21.0, 21.1, 3.0))  # texture angles tried on rotation-invariant shapes
MIN_CONTRAST = 0.25  # |b1| below this: no pattern, i.e. solid
MIN_EXPLAINED = 0.3  # a pattern must explain this share of the ink-fraction variance
SUB = np.array([0.25, 0.75])  # 2 x 2 sub-pixel samples
TIE = 0.02  # explained-variance difference below which two pattern poses are equally good


@dataclass
class TextureFrame:
    texture: str | None  # None when the frame has too few interior pixels to tell
    swapped: bool  # two-colour textures: c1 is the ink, c2 the base
    weight: float  # how much this frame counts in the majority
    angle: float  # texture angle that fitted best (radians; NaN when solid or unknown)
    origin: np.ndarray | None = None  # sprite origin at that angle


def interior(mask: np.ndarray) -> np.ndarray:
    return cv2.erode(mask.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)


def ink_fraction(pixels: np.ndarray, c1: np.ndarray, c2: np.ndarray) -> np.ndarray:
    axis = c2 - c1
    return (pixels - c1) @ axis / max(float(axis @ axis), 1.0)


def _candidate_angles(shape: str, angle: float) -> np.ndarray:
    k = SYMMETRY[shape]
    if k == 0:
        return FREE_ANGLES
    return angle + 2 * np.pi * np.arange(k) / k


def predicted_ink(texture: str, ys: np.ndarray, xs: np.ndarray, origin: np.ndarray, radius: float,
                  angles: np.ndarray) -> np.ndarray:
    """Ink coverage [A, P] of pixels (ys, xs) at each angle, averaged over 2 x 2 sub-pixel samples. origin is
    [2] or, one per angle, [A, 2]."""
    sy, sx = np.meshgrid(SUB, SUB, indexing="ij")
    origin = np.broadcast_to(np.asarray(origin, float), (len(angles), 2))
    px = (xs[None, :, None] + sx.ravel()[None, None, :]) - origin[:, 0, None, None]  # [A, P, 4]
    py = (ys[None, :, None] + sy.ravel()[None, None, :]) - origin[:, 1, None, None]
    c, s = np.cos(angles)[:, None, None], np.sin(angles)[:, None, None]
    u = (c * px + s * py) / radius  # the renderer's sprite coordinates, [A, P, 4]
    v = (-s * px + c * py) / radius
    return texture_ink(texture, u, v).mean(axis=2)


def _fit(t: np.ndarray, m: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Least squares t ~ b0 + b1 * m for each row of m [A, P]: (explained variance share [A], b1 [A])."""
    mc = m - m.mean(axis=1, keepdims=True)
    tc = t - t.mean()
    var_m = (mc**2).sum(axis=1)
    b1 = (mc @ tc) / np.maximum(var_m, 1e-6)
    explained = b1**2 * var_m / max(float((tc**2).sum()), 1e-6)
    return np.where(var_m > 1e-3, explained, 0.0), b1


def classify_frame(pixels: np.ndarray, ys: np.ndarray, xs: np.ndarray, c1: np.ndarray, c2: np.ndarray,
                   two_colour: bool, shape: str, origin: np.ndarray, radius: float, angle: float) -> TextureFrame:
    """Texture of one frame from its interior pixels [P, 3] at (ys, xs), given the sprite's pose."""
    if len(pixels) < 6:
        return TextureFrame(None, False, 0.0, np.nan)
    t = np.clip(ink_fraction(pixels, c1, c2), -0.5, 1.5)
    angles = _candidate_angles(shape, angle)
    # each reading of a symmetric shape's angle moves the origin (unless it is the centroid)
    centroid = origin + radius * (rotation(angle) @ geometry(shape).centroid)
    origins = np.stack([centroid - radius * (rotation(a) @ geometry(shape).centroid) for a in angles])
    turn = np.abs(np.angle(np.exp(1j * (angles - angle))))  # distance from the tracked angle, for ties
    best = ("solid", 0.0, 0.0, np.nan, None)  # texture, explained share, b1, angle, origin
    for texture in TWO_COLOUR_PATTERNS if two_colour else BASE_PATTERNS:
        explained, b1 = _fit(t, predicted_ink(texture, ys, xs, origins, radius, angles))
        ok = (b1 if not two_colour else np.abs(b1)) >= MIN_CONTRAST
        score = np.where(ok, explained, 0.0)
        # a half turn of stripes (a quarter turn of checks) swaps the colours: such ties go to the tracked angle,
        # which starts near upright (sprites are drawn so) and follows a spin
        tied = score >= score.max() - TIE
        a = int(np.argmin(np.where(tied, turn, np.inf)))
        if score[a] > best[1]:
            best = (texture, float(score[a]), float(b1[a]), float(angles[a]), origins[a])
    texture, explained, b1, ang, org = best
    if texture != "solid" and explained < MIN_EXPLAINED:
        texture, ang = "solid", np.nan
    if two_colour and texture == "solid":
        texture = None  # two colours but no pattern fits: this frame says nothing
    return TextureFrame(texture, two_colour and b1 < 0, float(len(pixels)), ang, org)
