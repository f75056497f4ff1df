"""probe_video: read a world-like video's subject, background and motion back from its pixels.

Pipeline: background model -> subject colours -> coverage (alpha) -> blobs -> shape and pose by template
matching -> texture by pattern fitting at that pose -> coverage again, now reading each pixel as base or ink
where the fitted pattern puts it -> final masks, shape, boxes -> motion from the pose track.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import cv2
import numpy as np

from customvid.world.probe.background import fit_background
from customvid.world.probe.motion import classify_motion, motion_features
from customvid.world.probe.segment import (
    alpha_along,
    blobs,
    denoise,
    estimate_colours,
    generous_alpha,
)
from customvid.world.probe.shape import (
    SYMMETRY,
    continuous_angles,
    match_shapes,
    normalised_patch,
    sprite_pose,
    template_bank,
    template_box,
)
from customvid.world.probe.shape import N as PATCH
from customvid.world.probe.texture import TextureFrame, classify_frame, interior, predicted_ink

ALPHA_FLOOR = 0.15  # coverage below this is treated as noise when measuring a blob


@dataclass
class VideoProbe:
    present: np.ndarray  # bool [F]
    boxes: np.ndarray  # float [F, 4] x1, y1, x2, y2 px; NaN rows where absent
    masks: np.ndarray  # bool [F, H, W] (the main subject's blob)
    n_components: np.ndarray  # int [F] separate foreground blobs
    centres: np.ndarray  # float [F, 2] sprite origin (rotation centre) px; NaN where absent
    scales: np.ndarray  # float [F] sprite radius px (half the renderer's `size * scale`); NaN where absent
    angles: np.ndarray  # float [F] sprite angle (radians, modulo the shape's symmetry); NaN where absent
    colour: str | None
    colour2: str | None
    shape: str | None
    texture: str | None
    background: str | None
    motion: str | None
    frame_colours: list[str | None]
    frame_shapes: list[str | None]
    frame_textures: list[str | None]
    confidence: dict[str, float] = field(default_factory=dict)  # per attribute, 0..1 (share of the vote)

    @property
    def single(self) -> np.ndarray:
        """bool [F]: a subject is present and it is the only blob."""
        return self.present & (self.n_components == 1)


def mask_box(mask: np.ndarray) -> np.ndarray:
    """x1, y1, x2, y2 pixel extent of a mask (x2, y2 exclusive), as the renderer's ground-truth boxes; NaN if empty."""
    ys, xs = np.nonzero(mask)
    if not len(xs):
        return np.full(4, np.nan)
    return np.array([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], float)


def _majority(values: list[str | None], weights: np.ndarray | None = None) -> tuple[str | None, float]:
    tally: Counter = Counter()
    for i, v in enumerate(values):
        if v is not None:
            tally[v] += 1.0 if weights is None else float(weights[i])
    if not tally or sum(tally.values()) <= 0:
        return None, 0.0
    name, top = tally.most_common(1)[0]
    return name, top / sum(tally.values())


def _empty(frames: np.ndarray, background: str | None) -> VideoProbe:
    f, h, w, _ = frames.shape
    nan = np.full(f, np.nan)
    return VideoProbe(np.zeros(f, bool), np.full((f, 4), np.nan), np.zeros((f, h, w), bool), np.zeros(f, int),
                      np.full((f, 2), np.nan), nan, nan.copy(), None, None, None, None, background, None,
                      [None] * f, [None] * f, [None] * f)


@dataclass
class _Blobs:
    """Per-frame main blob of a coverage map and its normalised patch."""

    present: np.ndarray
    masks: np.ndarray
    n_components: np.ndarray
    patches: np.ndarray
    centroids: np.ndarray
    sqrt_area: np.ndarray


def _measure(alpha: np.ndarray) -> _Blobs:
    n_frames, h, w = alpha.shape
    out = _Blobs(np.zeros(n_frames, bool), np.zeros((n_frames, h, w), bool), np.zeros(n_frames, int),
                 np.zeros((n_frames, PATCH, PATCH), np.float32), np.full((n_frames, 2), np.nan),
                 np.full(n_frames, np.nan))
    kernel = np.ones((5, 5), np.uint8)
    for f in range(n_frames):
        bl = blobs(alpha[f] >= 0.5)
        out.n_components[f] = bl.count
        if bl.main == 0:
            continue
        out.present[f] = True
        out.masks[f] = bl.labels == bl.main
        near = cv2.dilate(out.masks[f].astype(np.uint8), kernel).astype(bool)
        soft = np.where(near & (alpha[f] >= ALPHA_FLOOR), np.minimum(alpha[f], 1.0), 0.0).astype(np.float32)
        out.patches[f], cx, cy, out.sqrt_area[f] = normalised_patch(soft)
        out.centroids[f] = cx, cy
    return out


@dataclass
class _Poses:
    shape: str
    shape_share: float
    frame_shapes: list[str | None]
    centres: np.ndarray
    scales: np.ndarray
    angles: np.ndarray
    boxes: np.ndarray


def _fit_poses(b: _Blobs) -> _Poses:
    n_frames = len(b.present)
    idx = np.nonzero(b.present)[0]
    errors, angles = match_shapes(b.patches[idx])
    shapes = template_bank().shapes
    total = errors.sum(0)
    shape_i = int(np.argmin(total))
    frame_shapes: list[str | None] = [None] * n_frames
    poses = _Poses(shapes[shape_i], 0.0, frame_shapes, np.full((n_frames, 2), np.nan), np.full(n_frames, np.nan),
                   np.full(n_frames, np.nan), np.full((n_frames, 4), np.nan))
    track = continuous_angles(angles[:, shape_i], poses.shape)
    for j, f in enumerate(idx):
        frame_shapes[f] = shapes[int(np.argmin(errors[j]))]
        a = track[j]
        origin, radius = sprite_pose(poses.shape, b.centroids[f], b.sqrt_area[f], a)
        poses.centres[f], poses.scales[f], poses.angles[f] = origin, radius, a
        poses.boxes[f] = template_box(poses.shape, origin, radius, a)
    poses.shape_share = _majority(frame_shapes)[1]
    return poses


def _textures(xs: np.ndarray, b: _Blobs, poses: _Poses, c1, c2, two_colour: bool) -> list[TextureFrame | None]:
    out: list[TextureFrame | None] = [None] * len(b.present)
    for f in np.nonzero(b.present)[0]:
        ys, xx = np.nonzero(interior(b.masks[f]))
        out[f] = classify_frame(xs[f][ys, xx], ys, xx, c1, c2, two_colour, poses.shape, poses.centres[f],
                                poses.scales[f], poses.angles[f])
    return out


def _layout_alpha(xs: np.ndarray, bg: np.ndarray, c1: np.ndarray, c2: np.ndarray, texture: str, generous: np.ndarray,
                  noise: float, poses: _Poses, tex: list[TextureFrame | None]) -> np.ndarray:
    """Coverage where each pixel near the subject mixes the background with the base/ink blend that the fitted
    pattern predicts there. Where that reading does not fit the pixel (a pose or pattern slightly off), the
    generous reading stands."""
    alpha, _ = alpha_along(xs, bg, c1)
    _, h, w, _ = xs.shape
    tol = max(20.0, 4.0 * noise)
    for f in np.nonzero(np.isfinite(poses.scales))[0]:
        x1, y1, x2, y2 = poses.boxes[f]
        ys, xx = np.mgrid[max(0, int(y1) - 2):min(h, int(np.ceil(y2)) + 2),
                          max(0, int(x1) - 2):min(w, int(np.ceil(x2)) + 2)]
        if ys.size == 0:
            continue
        tf = tex[f]
        known = tf is not None and tf.texture == texture and np.isfinite(tf.angle)
        angle, origin = (tf.angle, tf.origin) if known else (poses.angles[f], poses.centres[f])
        t = predicted_ink(texture, ys.ravel(), xx.ravel(), origin, poses.scales[f], np.array([angle]))[0]
        if known and tf.swapped:  # per frame: a half turn of a striped pattern equals swapping its colours
            t = 1.0 - t
        mix = (1 - t)[:, None] * c1 + t[:, None] * c2
        a, r = alpha_along(xs[f][ys, xx], bg[ys, xx], mix.reshape(*ys.shape, 3))
        alpha[f][ys, xx] = np.where(r < tol, a, generous[f][ys, xx])
    return alpha


def _motion(poses: _Poses, present: np.ndarray, side: int) -> str | None:
    idx = np.nonzero(present & np.isfinite(poses.scales))[0]
    if len(idx) < 3:
        return None  # too little of a track to call
    feats = motion_features(poses.centres[idx], poses.scales[idx], poses.angles[idx], SYMMETRY[poses.shape], side)
    return classify_motion(feats, poses.centres[idx[[0, -1]]])


def probe_video(frames: np.ndarray) -> VideoProbe:
    """Read subject, background and motion from uint8 [F, H, W, 3] frames of a world-like video."""
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or len(frames) == 0:
        raise ValueError(f"expected frames [F, H, W, 3], got shape {frames.shape}")
    x = frames.astype(np.float32)
    bgfit = fit_background(x)
    bg = bgfit.image
    xs = denoise(x, bgfit.noise)
    rough = np.linalg.norm(xs - bg, axis=-1) > max(35.0, 8.0 * bgfit.noise)
    colours = estimate_colours(xs, bg, rough)
    if colours.name is None:
        return _empty(frames, bgfit.name)
    c1, c2, two_colour = colours.c1, colours.c2, colours.name2 is not None

    # pass 1: layout unknown, read ink generously; enough for shape, pose and texture
    generous = generous_alpha(xs, bg, c1, c2, bgfit.noise)
    b = _measure(generous)
    if not b.present.any():
        return _empty(frames, bgfit.name)
    poses = _fit_poses(b)
    tex = _textures(xs, b, poses, c1, c2, two_colour)
    frame_textures = [t.texture if t is not None else None for t in tex]
    texture, tex_share = _majority(frame_textures, np.array([t.weight if t else 0.0 for t in tex]))
    swapped = False
    if two_colour:
        votes = [(t.swapped, t.weight) for t in tex if t is not None and t.texture is not None]
        swapped = sum(w for s, w in votes if s) > sum(w for s, w in votes if not s)
        texture = texture or "checkered"
    texture = texture or "solid"  # too small everywhere to see a pattern

    # pass 2: the fitted layout says which pixels are ink; re-measure and re-fit
    if texture == "solid":
        alpha, _ = alpha_along(xs, bg, c1)
    else:
        alpha = _layout_alpha(xs, bg, c1, c2, texture, generous, bgfit.noise, poses, tex)
    b = _measure(alpha)
    if not b.present.any():
        return _empty(frames, bgfit.name)
    poses = _fit_poses(b)

    colour, colour2 = (colours.name2, colours.name) if swapped else (colours.name, colours.name2)
    present = b.present
    boxes = np.stack([mask_box(m) for m in b.masks])
    confidence = {"shape": poses.shape_share, "texture": tex_share}
    motion = _motion(poses, present, min(frames.shape[1:3]))
    return VideoProbe(present, boxes, b.masks, b.n_components, poses.centres, poses.scales, poses.angles,
                      colour, colour2, poses.shape, texture, bgfit.name, motion,
                      [colour if p else None for p in present], poses.frame_shapes,
                      [t if p else None for t, p in zip(frame_textures, present, strict=True)], confidence)
