"""probe_video: read a world-like video's subject, background and motion back from its pixels.

Pipeline: background model -> subject colours -> coverage (alpha) -> blobs -> shape and pose by template
matching -> texture by pattern fitting at that pose -> masks and boxes from the fitted outline -> motion from
the pose track.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from customvid.world.probe.background import fit_background
from customvid.world.probe.exact import exact_masks
from customvid.world.probe.motion import classify_motion, motion_features
from customvid.world.probe.segment import (
    alpha_along,
    blobs,
    denoise,
    estimate_colours,
    foreground_threshold,
    local_alpha,
    pattern_ink_colour,
)
from customvid.world.probe.shape import (
    SYMMETRY,
    continuous_angles,
    coverage,
    geometry,
    match_shapes,
    normalised_patch,
    rotation,
    sprite_pose,
    template_bank,
    template_box,
)
from customvid.world.probe.shape import N as PATCH
from customvid.world.probe.texture import TextureReading, classify_texture, frame_view, predicted_ink
from customvid.world.render import background_image, mask_box
from customvid.world.spec import Subject

ALPHA_FLOOR = 0.15  # coverage below this is treated as noise when measuring a blob
BLUR_STEPS = (0.0, 0.5, 0.8, 1.1, 1.5)  # candidate video blurs (px)
BASE_TO_TWO_COLOUR = {"dotted": "spotted", "striped": "banded"}  # same layouts, ink of another colour
FIRST_READING_FRAMES = 6  # the first pattern reading only steers pass 2; the biggest frames suffice
MODEL_AGREEMENT = 0.6  # IoU between fitted outline and pixel mask above which the outline gives mask and box
LOSSLESS_NOISE = 0.01  # grey levels: below this the frames may be a lossless render (probe.exact then checks)


@dataclass
class VideoProbe:
    """What the probe read. Video-level attributes are None when no frame shows a subject (background: when
    no world background fits); per-frame arrays hold NaN / None / False where the subject is absent."""

    present: np.ndarray  # bool [F]: a subject blob is there
    boxes: np.ndarray  # float [F, 4] x1, y1, x2, y2 px (x2, y2 exclusive, like the renderer's); NaN rows if absent
    masks: np.ndarray  # bool [F, H, W] the main (largest) subject
    n_components: np.ndarray  # int [F] separate foreground blobs (2 = a second subject or a split one)
    centres: np.ndarray  # float [F, 2] sprite origin (the point the renderer moves and turns about) px
    scales: np.ndarray  # float [F] sprite radius px (the renderer's size / 2 * scale)
    angles: np.ndarray  # float [F] sprite angle, radians, tracked through the shape's symmetry
    colour: str | None
    colour2: str | None  # second colour of two-colour textures (checkered, spotted, banded)
    shape: str | None
    texture: str | None
    background: str | None
    motion: str | None
    frame_colours: list[str | None]  # each frame's own dominant colour
    frame_shapes: list[str | None]  # each frame's own best template
    frame_textures: list[str | None]  # each frame's pattern at the video's pattern angle (None: too small)
    confidence: dict[str, float] = field(default_factory=dict)  # per attribute, 0..1 (see probe_video)

    @property
    def single(self) -> np.ndarray:
        """bool [F]: a subject is present and it is the only blob."""
        return self.present & (self.n_components == 1)


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


def _fit_poses(b: _Blobs, shape: str | None = None) -> _Poses:
    """Shape (the best template summed over frames, unless given) and per-frame pose."""
    n_frames = len(b.present)
    idx = np.nonzero(b.present)[0]
    errors, angles = match_shapes(b.patches[idx])
    shapes = template_bank().shapes
    total = errors.sum(0)
    shape_i = int(np.argmin(total)) if shape is None else shapes.index(shape)
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
    poses.shape_share = frame_shapes.count(poses.shape) / max(len(idx), 1)
    return poses


def _biggest(b: _Blobs, n: int) -> np.ndarray:
    """Present frames with the n biggest subjects, in time order."""
    idx = np.nonzero(b.present)[0]
    return np.sort(idx[np.argsort(-b.sqrt_area[idx])[:n]])


def _coverages(b: _Blobs, poses: _Poses, frames: np.ndarray | None = None) -> np.ndarray:
    """The fitted outline's coverage [F, H, W] in the given (default: every present) frame, zeros elsewhere."""
    n_frames, h, w = b.masks.shape
    out = np.zeros((n_frames, h, w), np.float32)
    for f in np.nonzero(b.present)[0] if frames is None else frames:
        out[f] = coverage(poses.shape, poses.centres[f], poses.scales[f], poses.angles[f], h, w)
    return out


def _blur_sigma(alpha: np.ndarray, cover: np.ndarray, present: np.ndarray) -> float:
    """The Gaussian blur (px) that best turns the fitted outlines into the measured coverage, judged on the
    frames with the largest subjects."""
    idx = np.nonzero(present & (cover.sum(axis=(1, 2)) > 0))[0]
    idx = idx[np.argsort(-cover[idx].sum(axis=(1, 2)))[:4]]
    a = np.clip(alpha[idx], 0, 1)
    errors = [((a - (np.stack([cv2.GaussianBlur(c, (0, 0), s) for c in cover[idx]]) if s else cover[idx])) ** 2).sum()
              for s in BLUR_STEPS]
    return float(BLUR_STEPS[int(np.argmin(errors))])


def _texture(xs: np.ndarray, bg: np.ndarray, cover: np.ndarray, sigma: float, b: _Blobs, poses: _Poses,
             c1: np.ndarray, c2: np.ndarray, two_colour: bool, max_frames: int | None = None,
             offset: float | None = None) -> TextureReading:
    """The pattern, read from every present frame or only the max_frames with the biggest subject; at a given
    pattern angle offset or searching for it."""
    frames = np.nonzero(b.present)[0] if max_frames is None else _biggest(b, max_frames)
    views = {}
    for f in frames:
        cov = cv2.GaussianBlur(cover[f], (0, 0), sigma) if sigma else cover[f]
        view = frame_view(xs[f], bg, cov, c1, c2, _outline_centroid(poses, f), poses.scales[f], poses.angles[f], sigma)
        if view is not None:
            views[int(f)] = view
    return classify_texture(views, poses.shape, two_colour, offset)


def _motion(poses: _Poses, present: np.ndarray, side: int) -> str | None:
    idx = np.nonzero(present & np.isfinite(poses.scales))[0]
    if len(idx) < 3:
        return None  # too little of a track to call
    feats = motion_features(poses.centres[idx], poses.scales[idx], poses.angles[idx], SYMMETRY[poses.shape], side)
    return classify_motion(feats, poses.centres[idx[[0, -1]]])


def _outline_centroid(poses: _Poses, f: int) -> np.ndarray:
    """Frame f's fitted outline's centroid (px), the point its texture is laid out from."""
    return poses.centres[f] + poses.scales[f] * (rotation(poses.angles[f]) @ geometry(poses.shape).centroid)


def _pattern_pose(poses: _Poses, reading: TextureReading, f: int) -> tuple[np.ndarray, float]:
    """Origin and angle of frame f's texture as the reading placed it: the pattern turns about the outline's
    centroid by the reading's angle offset (from zero for a round shape, whose outline shows no angle)."""
    angle = reading.angle_offset if SYMMETRY[poses.shape] == 0 else poses.angles[f] + reading.angle_offset
    return _outline_centroid(poses, f) - poses.scales[f] * (rotation(angle) @ geometry(poses.shape).centroid), angle


def _layout_alpha(xs: np.ndarray, bg: np.ndarray, c1: np.ndarray, c2: np.ndarray, reading: TextureReading,
                  poses: _Poses, fallback: np.ndarray, noise: float) -> np.ndarray:
    """Coverage reading each pixel near the subject against the base/ink blend that the fitted pattern puts
    there (solid: the base colour). This settles what no single pixel can: on a dark background a dark ink
    stripe and a half-covered base edge have the same colour. Where that reading does not fit the pixel (pose
    or pattern slightly off, colours mixed by compression) the first reading stands."""
    near = fallback > 0  # the first reading's region of interest
    alpha = np.zeros_like(fallback)
    alpha[near], _ = alpha_along(xs[near], np.broadcast_to(bg, xs.shape)[near], c1)
    if reading.texture == "solid":
        return alpha
    _, h, w, _ = xs.shape
    tol = max(20.0, 4.0 * noise)
    for f in np.nonzero(np.isfinite(poses.scales))[0]:
        x1, y1, x2, y2 = poses.boxes[f]
        ys, xx = np.mgrid[max(0, int(y1) - 2):min(h, int(np.ceil(y2)) + 2),
                          max(0, int(x1) - 2):min(w, int(np.ceil(x2)) + 2)]
        if ys.size == 0:
            continue
        origin, angle = _pattern_pose(poses, reading, f)
        t = predicted_ink(reading.texture, ys.ravel(), xx.ravel(), origin, poses.scales[f], np.array([angle]))[0]
        if reading.swapped:
            t = 1.0 - t
        mix = (1 - t)[:, None] * c1 + t[:, None] * c2
        a, r = alpha_along(xs[f][ys, xx], bg[ys, xx], mix.reshape(*ys.shape, 3))
        alpha[f][ys, xx] = np.where(r < tol, a, fallback[f][ys, xx])
    return alpha


def _model_masks(b: _Blobs, b2: _Blobs, cover: np.ndarray,
                 agree: float = MODEL_AGREEMENT) -> tuple[np.ndarray, np.ndarray]:
    """Per frame, the fitted sprite's own coverage >= 0.5 where it agrees with a pixel mask of either pass (IoU
    >= agree), else the first pass's pixel mask; and the masks' boxes. The fit pools every edge pixel, so under
    noise, blur and compression it places the outline better than thresholding each pixel does; the pixel
    mask stands where the subject is no world sprite."""
    masks = b.masks.copy()
    for f in np.nonzero(b.present)[0]:
        model = cover[f] >= 0.5
        for pixels in (b.masks[f], b2.masks[f]):
            if (model & pixels).sum() >= agree * (model | pixels).sum():
                masks[f] = model
                break
    return masks, np.stack([mask_box(m) for m in masks]).astype(float)


def _exact_masks(frames: np.ndarray, masks: np.ndarray, boxes: np.ndarray, attributes: tuple, bg: np.ndarray,
                 poses: _Poses, reading: TextureReading) -> None:
    """On a lossless render, replace (in place) each frame's mask and box by those of the pose that re-renders
    the read subject exactly, where one is found near the fitted pose (see probe.exact)."""
    try:
        subject = Subject(*attributes)
    except (ValueError, TypeError):
        return  # the reading is no world subject; nothing can reproduce the frames
    centres, angles = poses.centres.copy(), poses.angles.copy()
    if subject.texture != "solid":  # start from the pattern's own pose, which the renderer draws both from
        for f in np.nonzero(np.isfinite(poses.scales))[0]:
            centres[f], angles[f] = _pattern_pose(poses, reading, f)
    for f, mask in exact_masks(frames, subject, bg, centres, poses.scales, angles).items():
        masks[f], boxes[f] = mask, mask_box(mask)


def probe_video(frames: np.ndarray) -> VideoProbe:
    """Read subject, background and motion from uint8 [F, H, W, 3] frames of a world-like video (any size and
    frame count; rendered, compressed or generated). One subject is read: the largest blob of each frame.

    confidence: background (how much better than the runner-up it fits), colour (share of the colour votes),
    shape (share of frames whose own best template is the video's shape), texture (share of the ink-fraction
    variance the pattern explains; 0 for solid).
    """
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or len(frames) == 0:
        raise ValueError(f"expected frames [F, H, W, 3], got shape {frames.shape}")
    x = frames.astype(np.float32)
    bgfit = fit_background(x)
    bg = bgfit.image
    xs = denoise(x, bgfit.noise)
    rough = np.linalg.norm(xs - bg, axis=-1) > foreground_threshold(bgfit.noise)
    colours = estimate_colours(xs, bg, rough)
    if colours.name is None:  # nothing stands off the background
        return _empty(frames, bgfit.name)
    c1, c2, two_colour = colours.c1, colours.c2, colours.name2 is not None

    alpha = local_alpha(xs, bg, rough, c1, c2, bgfit.noise)
    b = _measure(alpha)
    if not b.present.any():
        return _empty(frames, bgfit.name)
    poses = _fit_poses(b)
    cover = _coverages(b, poses, _biggest(b, FIRST_READING_FRAMES))  # all the first reading needs
    sigma = _blur_sigma(alpha, cover, b.present)
    reading = _texture(xs, bg, cover, sigma, b, poses, c1, c2, two_colour, max_frames=FIRST_READING_FRAMES)
    texture, swapped = reading.texture, reading.swapped
    frame_textures = [reading.frame_textures.get(f) for f in range(len(frames))]

    # pass 2: with the pattern known, read coverage again and refit the pose; a solid subject's coverage is
    # now read exactly (no ink to confuse with edges, so holes and points stay), and so is its shape
    b2 = _measure(_layout_alpha(xs, bg, c1, c2, reading, poses, alpha, bgfit.noise))
    both = b.present & b2.present
    agree = both & (np.abs(b2.sqrt_area / np.where(both, b.sqrt_area, 1.0) - 1) < 0.15)
    if agree.any():
        b2.present = agree
        poses2 = _fit_poses(b2, None if texture == "solid" else poses.shape)
        if poses2.shape != poses.shape:
            poses = _fit_poses(b, poses2.shape)
        for f in np.nonzero(agree)[0]:
            poses.centres[f], poses.scales[f], poses.angles[f] = poses2.centres[f], poses2.scales[f], poses2.angles[f]
    cover = _coverages(b, poses)
    # the pattern again, at the better pose: at the angle found, or (if none was found) searching again
    offset = None if texture == "solid" else reading.angle_offset
    reading = _texture(xs, bg, cover, sigma, b, poses, c1, c2, two_colour, offset=offset)
    texture, swapped = reading.texture, reading.swapped
    frame_textures = [reading.frame_textures.get(f) for f in range(len(frames))]

    colour, colour2 = (colours.name2, colours.name) if swapped else (colours.name, colours.name2)
    if colour2 is None and texture in BASE_TO_TWO_COLOUR and reading.ink_shift is not None:
        colour2 = pattern_ink_colour(reading.ink_shift, c1, colour)
        if colour2 is not None:  # the ink is another colour: the two-colour version of the pattern
            texture = BASE_TO_TWO_COLOUR[texture]
    present = b.present
    masks, boxes = _model_masks(b, b2, cover)
    if bgfit.noise < LOSSLESS_NOISE and bgfit.name is not None:
        _exact_masks(frames, masks, boxes, (poses.shape, colour, texture, colour2),
                     background_image(bgfit.name, frames.shape[2], frames.shape[1]), poses, reading)
    motion = _motion(poses, present, min(frames.shape[1:3]))
    # a two-colour subject's frames may each show more of either colour; both name the subject
    same = {colours.name, colours.name2} - {None}
    frame_colours = [(colour if n in same else n) if p else None
                     for n, p in zip(colours.frame_names, present, strict=True)]
    confidence = {"background": bgfit.margin, "colour": _vote_share(colours.votes, colour, colour2),
                  "shape": poses.shape_share, "texture": reading.share}
    return VideoProbe(present, boxes, masks, b.n_components, poses.centres, poses.scales, poses.angles,
                      colour, colour2, poses.shape, texture, bgfit.name, motion, frame_colours, poses.frame_shapes,
                      [t if p else None for t, p in zip(frame_textures, present, strict=True)], confidence)


def _vote_share(votes: dict[str, float], *names: str | None) -> float:
    total = sum(votes.values())
    return sum(votes.get(n, 0.0) for n in names if n) / total if total > 0 else 0.0
