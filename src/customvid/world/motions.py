"""Parametric motions: each maps normalised time t in [0, 1] to the subject's centre, scale and angle.

A motion is sampled relative to the origin and then placed uniformly among the offsets that keep the whole
path (including the sprite's radius) inside the frame; so speeds, extents and start positions all vary.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from customvid.world.vocab import DIRECTIONS

PATH_MARGIN = 1.0  # px kept between the sprite's bounding disc and the frame edge


@dataclass(frozen=True)
class Path:
    """Per-frame pose of the sprite: centre (px), scale (x base size), angle (radians)."""

    cx: np.ndarray
    cy: np.ndarray
    scale: np.ndarray
    angle: np.ndarray


def _path(t, cx, cy, scale=1.0, angle=0.0) -> Path:
    full = lambda x: np.broadcast_to(np.asarray(x, dtype=float), t.shape).copy()  # noqa: E731
    return Path(full(cx), full(cy), full(scale), full(angle))


def relative_path(motion: str, t: np.ndarray, p: dict) -> Path:
    """The path with its start (or centre) at the origin; `p` holds the motion's sampled parameters.
    Explicit per-frame poses (`p["poses"]` = [cx, cy, scale, angle] lists) override the named motion."""
    if "poses" in p:
        cx, cy, scale, angle = (np.asarray(x, dtype=float) for x in p["poses"])
        if len(cx) != len(t):
            raise ValueError(f"{len(cx)} poses for {len(t)} frames")
        return Path(cx, cy, scale, angle)
    if motion in DIRECTIONS:
        dx, dy = DIRECTIONS[motion]
        norm = np.hypot(dx, dy)
        return _path(t, p["distance"] * dx / norm * t, p["distance"] * dy / norm * t, angle=p["angle0"])
    if motion == "still":
        return _path(t, 0.0, 0.0, angle=p["angle0"])
    if motion == "bounce":  # bounces off a floor at y = 0, apex `height` above it
        return _path(t, 0.0, -p["height"] * np.abs(np.sin(np.pi * p["bounces"] * t)), angle=p["angle0"])
    if motion == "circle":
        a = p["phase"] + p["turn"] * 2 * np.pi * 0.85 * t
        return _path(t, p["radius"] * np.cos(a), p["radius"] * np.sin(a), angle=p["angle0"])
    if motion == "grow":
        return _path(t, 0.0, 0.0, scale=p["s_from"] + (p["s_to"] - p["s_from"]) * t, angle=p["angle0"])
    if motion == "shrink":
        return _path(t, 0.0, 0.0, scale=p["s_to"] + (p["s_from"] - p["s_to"]) * t, angle=p["angle0"])
    if motion == "spin":
        return _path(t, 0.0, 0.0, angle=p["angle0"] + p["turn"] * np.pi * t)
    if motion == "zigzag":  # travel sideways while a triangle wave moves the subject up and down
        tri = 2 * np.abs(np.mod(p["periods"] * t + 0.25, 1.0) - 0.5) - 0.5
        return _path(t, p["direction"] * p["distance"] * t, p["amplitude"] * 2 * tri, angle=p["angle0"])
    if motion == "figure_eight":
        a = 2 * np.pi * t
        return _path(t, p["width"] * np.sin(a), p["height"] * np.sin(2 * a) / 2, angle=p["angle0"])
    if motion == "spiral":
        a = p["phase"] + p["turn"] * 2 * np.pi * 1.5 * t
        r = p["r_from"] + (p["r_to"] - p["r_from"]) * t
        return _path(t, r * np.cos(a), r * np.sin(a), angle=p["angle0"])
    raise ValueError(f"unknown motion {motion!r}")


def sample_params(motion: str, rng: np.random.Generator, width: int, height: int, base_size: float) -> dict:
    """Random parameters for `motion`, in pixels of a width x height frame."""
    side = min(width, height)
    angle0 = float(rng.choice([0.0, rng.uniform(-0.3, 0.3)]))  # mostly upright, sometimes slightly tilted
    p: dict = {"angle0": angle0}
    if motion in DIRECTIONS:
        p["distance"] = float(rng.uniform(0.3, 0.55) * side)
    elif motion == "bounce":
        p.update(height=float(rng.uniform(0.25, 0.45) * side), bounces=2)
    elif motion == "circle":
        p.update(
            radius=float(rng.uniform(0.14, 0.22) * side),
            phase=float(rng.uniform(0, 2 * np.pi)),
            turn=float(rng.choice([-1.0, 1.0])),
        )
    elif motion in ("grow", "shrink"):
        p.update(s_from=float(rng.uniform(0.5, 0.65)), s_to=float(rng.uniform(1.4, 1.7)))
    elif motion == "spin":
        p.update(turn=float(rng.choice([-1.0, 1.0])))
    elif motion == "zigzag":
        p.update(
            direction=float(rng.choice([-1.0, 1.0])),
            distance=float(rng.uniform(0.35, 0.5) * side),
            amplitude=float(rng.uniform(0.08, 0.12) * side),
            periods=2.0,
        )
    elif motion == "figure_eight":
        p.update(width=float(rng.uniform(0.18, 0.25) * side), height=float(rng.uniform(0.25, 0.35) * side))
    elif motion == "spiral":
        p.update(
            r_from=float(0.03 * side),
            r_to=float(rng.uniform(0.18, 0.24) * side),
            phase=float(rng.uniform(0, 2 * np.pi)),
            turn=float(rng.choice([-1.0, 1.0])),
        )
    elif motion != "still":
        raise ValueError(f"unknown motion {motion!r}")
    return p


def place(rel: Path, rng: np.random.Generator, width: int, height: int, base_size: float) -> tuple[float, float]:
    """A uniformly random offset that keeps every frame's bounding disc inside the frame, or None if none does."""
    r = rel.scale * base_size / 2 + PATH_MARGIN
    lo_x, hi_x = np.max(r - rel.cx), np.min(width - r - rel.cx)
    lo_y, hi_y = np.max(r - rel.cy), np.min(height - r - rel.cy)
    if lo_x > hi_x or lo_y > hi_y:
        return None
    return float(rng.uniform(lo_x, hi_x)), float(rng.uniform(lo_y, hi_y))


def frame_times(frames: int) -> np.ndarray:
    return np.linspace(0.0, 1.0, frames) if frames > 1 else np.zeros(1)
