"""Motion class from the subject's pose track (sprite origin, radius, angle per frame).

Only the geometry of the path is used, never the frame timing, so dropped frames change little. Thresholds are
fractions of the frame side (sizes) or angles; the world's motions are well apart in these terms:
- still / spin / grow / shrink keep the origin in place (spin turns the sprite, grow and shrink scale it >= 2x);
- the eight directions are straight lines of >= 0.3 side;
- bounce goes up and down a vertical segment (>= 0.25 side high) twice, ending where it began;
- zigzag travels sideways with a >= 0.08 side triangle wave across its line;
- circle sweeps 0.85 of a turn at a steady radius; spiral 1.5 turns at a growing radius;
- figure_eight closes on itself with little net turning.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from customvid.world import vocab

DIRECTION_NAMES = list(vocab.DIRECTIONS)


@dataclass
class MotionFeatures:
    n: int
    extent: float  # largest distance between two origins / side
    scale_ratio: float  # end radius / start radius
    rotation: float  # median signed per-frame turn (radians), modulo the shape's symmetry
    turn_consistency: float  # |mean turn| / mean |turn|
    chord: float  # |end - start| / extent
    straightness: float  # rms distance off the best line / extent
    elongation: float  # minor / major principal std
    axis_angle: float  # principal axis angle (radians, 0 = horizontal)
    sweep: float  # signed total turning of the path's heading (radians), steps under 0.5 px skipped
    radius_cv: float  # std / mean of the distance to that centre
    radius_trend: float  # late / early mean distance to that centre
    perp_sign_changes: int  # sign changes of the offset from the start-end line
    vertical_reversals: int  # changes of vertical direction larger than a few px
    horizontal_reversals: int
    axis_reversals: int  # changes of direction along the principal axis


def _wrap(a: np.ndarray, period: float) -> np.ndarray:
    return (a + period / 2) % period - period / 2


def _circle_centre(p: np.ndarray) -> np.ndarray:
    """Algebraic (Kasa) least-squares circle centre; the mean when the points are nearly collinear."""
    a = np.column_stack([p, np.ones(len(p))])
    b = -(p**2).sum(1)
    sol, *_ = np.linalg.lstsq(a, b, rcond=None)
    centre = -sol[:2] / 2
    if not np.all(np.isfinite(centre)) or np.linalg.norm(centre - p.mean(0)) > 3 * np.ptp(p, axis=0).max():
        return p.mean(0)
    return centre


def _reversals(y: np.ndarray, min_step: float) -> int:
    """Direction changes of a 1-D track, ignoring wiggles smaller than min_step (hysteresis)."""
    count, direction, anchor = 0, 0, y[0]
    for v in y[1:]:
        if direction >= 0 and v < anchor - min_step:
            count += direction > 0
            direction, anchor = -1, v
        elif direction <= 0 and v > anchor + min_step:
            count += direction < 0
            direction, anchor = 1, v
        elif (direction > 0 and v > anchor) or (direction < 0 and v < anchor):
            anchor = v
    return count


def motion_features(centres: np.ndarray, scales: np.ndarray, angles: np.ndarray, symmetry: int,
                    side: float) -> MotionFeatures:
    """Features of present frames' origins [n, 2], radii [n] and angles [n]."""
    p = centres
    n = len(p)
    diff = p[:, None, :] - p[None, :, :]
    extent_px = float(np.sqrt((diff**2).sum(-1)).max())
    k = min(3, max(1, n // 4))
    scale_ratio = float(np.median(scales[-k:]) / max(np.median(scales[:k]), 1e-6))
    if symmetry > 0 and n > 1:
        turns = _wrap(np.diff(angles), 2 * np.pi / symmetry)
        rotation = float(np.median(turns))
        consistency = float(abs(turns.mean()) / max(np.abs(turns).mean(), 1e-9))
    else:
        rotation, consistency = 0.0, 0.0
    ext = max(extent_px, 1e-6)
    chord = float(np.linalg.norm(p[-1] - p[0]) / ext)
    mean = p.mean(0)
    cov = np.cov((p - mean).T) if n > 2 else np.eye(2)
    evals, evecs = np.linalg.eigh(cov)
    major = evecs[:, 1]
    perp = (p - mean) @ evecs[:, 0]
    straightness = float(np.sqrt((perp**2).mean()) / ext)
    elongation = float(np.sqrt(max(evals[0], 0) / max(evals[1], 1e-9)))
    axis_angle = float(np.arctan2(major[1], major[0]))
    centre = _circle_centre(p)
    rel = p - centre
    steps = np.diff(p, axis=0)
    lengths = np.linalg.norm(steps, axis=1)
    heading = np.arctan2(steps[:, 1], steps[:, 0])[lengths > 0.5]
    sweep = float(_wrap(np.diff(heading), 2 * np.pi).sum()) if len(heading) > 1 else 0.0
    rad = np.linalg.norm(rel, axis=1)
    radius_cv = float(rad.std() / max(rad.mean(), 1e-6))
    h = max(2, n // 3)
    radius_trend = float(rad[-h:].mean() / max(rad[:h].mean(), 1e-6))
    line = p[-1] - p[0]
    normal = np.array([-line[1], line[0]]) / max(np.linalg.norm(line), 1e-6)
    off = (p - p[0]) @ normal
    big = np.abs(off) > max(1.0, 0.03 * side)
    signs = np.sign(off[big])
    perp_changes = int((np.diff(signs) != 0).sum()) if len(signs) > 1 else 0
    step = max(1.5, 0.05 * side)
    return MotionFeatures(n, extent_px / side, scale_ratio, rotation, consistency, chord, straightness,
                          elongation, axis_angle, sweep, radius_cv, radius_trend, perp_changes,
                          _reversals(p[:, 1], step), _reversals(p[:, 0], step), _reversals(p @ major, step))


def direction_name(vec: np.ndarray) -> str:
    """The nearest of the eight compass directions (image y points down)."""
    ang = np.arctan2(vec[1], vec[0])
    best, err = DIRECTION_NAMES[0], np.inf
    for name, (dx, dy) in vocab.DIRECTIONS.items():
        e = abs(_wrap(np.array(ang - np.arctan2(dy, dx)), 2 * np.pi))
        if e < err:
            best, err = name, float(e)
    return best


STILL_EXTENT = 0.1  # of the side: origins spread less than this -> a motion in place
SCALE_CHANGE = 1.5  # end/start radius ratio that makes grow or shrink
SPIN_STEP = np.deg2rad(4.0)  # median turn per frame that makes spin


def classify_motion(f: MotionFeatures, start_end: np.ndarray) -> str:
    """start_end: [2, 2] first and last origins (px)."""
    if f.extent < STILL_EXTENT or (f.extent < 0.25 and max(f.scale_ratio, 1 / f.scale_ratio) >= SCALE_CHANGE):
        if f.scale_ratio >= SCALE_CHANGE:
            return "grow"
        if f.scale_ratio <= 1 / SCALE_CHANGE:
            return "shrink"
        if abs(f.rotation) >= SPIN_STEP and f.turn_consistency > 0.5:
            return "spin"
        return "still"
    if f.straightness < 0.06 and f.axis_reversals == 0:
        return direction_name(start_end[1] - start_end[0])
    if abs(np.sin(f.axis_angle)) > 0.9 and f.elongation < 0.3 and f.vertical_reversals >= 1:
        return "bounce"
    if abs(f.sweep) > np.deg2rad(420) or (f.radius_trend > 2.5 and abs(f.sweep) > np.deg2rad(270)):
        return "spiral"
    if abs(f.sweep) > np.deg2rad(200) and f.radius_cv < 0.3:
        return "circle"
    if f.horizontal_reversals == 0 and (f.perp_sign_changes >= 2 or f.vertical_reversals >= 2):
        return "zigzag"
    if f.vertical_reversals >= 2 or f.horizontal_reversals >= 1:
        return "figure_eight"
    return direction_name(start_end[1] - start_end[0])
