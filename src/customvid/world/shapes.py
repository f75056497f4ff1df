"""Sprite outlines as polygons in unit coordinates (inside the unit disc, y pointing down) and texture patterns."""

from __future__ import annotations

import numpy as np


def _regular(n: int, radius: float = 1.0, phase: float = -np.pi / 2) -> np.ndarray:
    a = phase + 2 * np.pi * np.arange(n) / n
    return np.stack([radius * np.cos(a), radius * np.sin(a)], axis=1)


def _star(points: int = 5, inner: float = 0.45) -> np.ndarray:
    outer = _regular(points)
    inner_pts = _regular(points, inner, phase=-np.pi / 2 + np.pi / points)
    return np.stack([outer, inner_pts], axis=1).reshape(-1, 2)


def _heart(n: int = 64) -> np.ndarray:
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    x = 16 * np.sin(t) ** 3
    y = -(13 * np.cos(t) - 5 * np.cos(2 * t) - 2 * np.cos(3 * t) - np.cos(4 * t))
    pts = np.stack([x, y], axis=1)
    pts -= (pts.max(0) + pts.min(0)) / 2
    return pts / np.abs(pts).max()


def _cross(arm: float = 0.34) -> np.ndarray:
    a, b = arm, 0.95
    return np.array(
        [(-a, -b), (a, -b), (a, -a), (b, -a), (b, a), (a, a), (a, b), (-a, b), (-a, a), (-b, a), (-b, -a), (-a, -a)],
        dtype=float,
    )


def _triangle() -> np.ndarray:
    pts = _regular(3)
    pts[:, 1] += 0.25  # centre the bounding box vertically
    return pts


def _fit_unit_disc(outlines: dict) -> dict:
    """Scale each outline (and its hole) so its farthest vertex lies on the unit circle: placement keeps the
    unit disc (x size/2) inside the frame, so no rotation may carry a corner outside it."""
    out = {}
    for name, (outer, hole) in outlines.items():
        k = 1.0 / np.hypot(outer[:, 0], outer[:, 1]).max()
        out[name] = (outer * k, None if hole is None else hole * k)
    return out


# name -> (outer polygon, optional hole polygon)
OUTLINES: dict[str, tuple[np.ndarray, np.ndarray | None]] = _fit_unit_disc(
    {
        "circle": (_regular(48), None),
        "square": (np.array([(-0.8, -0.8), (0.8, -0.8), (0.8, 0.8), (-0.8, 0.8)]), None),
        "triangle": (_triangle(), None),
        "star": (_star(), None),
        "heart": (_heart(), None),
        "diamond": (np.array([(0.0, -1.0), (0.68, 0.0), (0.0, 1.0), (-0.68, 0.0)]), None),
        "ring": (_regular(48), _regular(48, 0.5)),
        "hexagon": (_regular(6, phase=0.0), None),
        "cross": (_cross(), None),
    }
)


def texture_ink(texture: str, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Boolean map of where the second colour shows, in the sprite's own (rotated, scaled) unit coordinates,
    so patterns move, scale and spin with the subject."""
    if texture == "solid":
        return np.zeros(u.shape, dtype=bool)
    if texture in ("striped", "banded"):
        return np.floor(v / 0.36).astype(int) % 2 == 1
    if texture in ("dotted", "spotted"):
        pu = np.mod(u + 0.2, 0.8) - 0.4
        pv = np.mod(v + 0.2, 0.8) - 0.4
        return pu**2 + pv**2 < 0.2**2
    if texture == "checkered":
        return (np.floor(u / 0.5).astype(int) + np.floor(v / 0.5).astype(int)) % 2 == 1
    raise ValueError(f"unknown texture {texture!r}")
