"""Pure numpy/PIL renderer: a ClipSpec -> frames, per-frame masks and boxes (the ground truth).

Sprites are drawn 4x supersampled and area-averaged, so edges are anti-aliased like real (and generated) video;
masks are coverage >= 0.5 and boxes are the masks' pixel extent (x2, y2 exclusive), so a detector that recovers the
mask exactly scores IoU 1.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from PIL import Image, ImageDraw

from customvid.world import vocab
from customvid.world.motions import Path, frame_times, relative_path
from customvid.world.shapes import OUTLINES, texture_ink
from customvid.world.spec import ClipSpec, Subject

SUPERSAMPLE = 4


@dataclass
class Clip:
    frames: np.ndarray  # uint8 [F, H, W, 3]
    masks: np.ndarray  # bool [F, H, W]
    boxes: np.ndarray  # float32 [F, 4] x1, y1, x2, y2 in pixels
    spec: ClipSpec


@lru_cache(maxsize=64)
def background_image(name: str, width: int, height: int) -> np.ndarray:
    """float32 [H, W, 3] in 0..255; deterministic in the name so the probe can match it exactly."""
    if name in vocab.PLAIN_BACKGROUNDS:
        img = np.empty((height, width, 3), np.float32)
        img[:] = vocab.PLAIN_BACKGROUNDS[name]
    elif name == "tiled":
        cell = max(4, min(width, height) // 8)
        yy, xx = np.mgrid[0:height, 0:width]
        dark = ((yy // cell + xx // cell) % 2 == 0)[..., None]
        img = np.where(dark, np.float32([45, 45, 55]), np.float32([70, 70, 82])).astype(np.float32)
    elif name == "gradient":
        a = np.linspace(0.0, 1.0, height, dtype=np.float32)[:, None, None]
        top, bottom = np.float32([10, 20, 70]), np.float32([70, 15, 55])
        img = np.broadcast_to(top * (1 - a) + bottom * a, (height, width, 3)).astype(np.float32)
    else:
        raise ValueError(f"unknown background {name!r}")
    img.setflags(write=False)
    return img


def absolute_path(spec: ClipSpec) -> Path:
    rel = relative_path(spec.motion, frame_times(spec.frames), spec.params)
    ox, oy = spec.offset
    return Path(rel.cx + ox, rel.cy + oy, rel.scale, rel.angle)


def _sprite_layers(subject: Subject, cx, cy, radius, angle, width, height):
    """Hi-res coverage of the sprite and of its texture ink, each [H*S, W*S] float."""
    s = SUPERSAMPLE
    outer, hole = OUTLINES[subject.shape]
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])

    def to_pixels(poly):
        pts = poly @ rot.T * radius + (cx, cy)
        return [tuple(p) for p in pts * s]

    canvas = Image.new("L", (width * s, height * s), 0)
    draw = ImageDraw.Draw(canvas)
    draw.polygon(to_pixels(outer), fill=255)
    if hole is not None:
        draw.polygon(to_pixels(hole), fill=0)
    cover = np.asarray(canvas, dtype=np.float32) / 255.0
    ink = np.zeros_like(cover)
    ys, xs = np.nonzero(cover)
    if len(xs) and subject.texture != "solid":
        # sprite-local coordinates of every covered hi-res pixel centre: texture moves and spins with the sprite
        px = (xs + 0.5) / s - cx
        py = (ys + 0.5) / s - cy
        u = (rot[0, 0] * px + rot[1, 0] * py) / radius
        v = (rot[0, 1] * px + rot[1, 1] * py) / radius
        ink[ys, xs] = texture_ink(subject.texture, u, v)
    return cover, ink


def _downsample(x: np.ndarray) -> np.ndarray:
    s = SUPERSAMPLE
    h, w = x.shape[0] // s, x.shape[1] // s
    return x.reshape(h, s, w, s).mean(axis=(1, 3))


def mask_box(mask: np.ndarray) -> np.ndarray:
    """[x1, y1, x2, y2] pixel extent of a boolean mask (x2, y2 exclusive); NaNs when empty."""
    ys, xs = np.nonzero(mask)
    if not len(xs):
        return np.full(4, np.nan, np.float32)
    return np.array([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], np.float32)


def composite(subject: Subject, bg: np.ndarray, cx: float, cy: float, radius: float, angle: float
              ) -> tuple[np.ndarray, np.ndarray]:
    """One frame of `subject` at this pose over background bg (float [H, W, 3]): the uint8 image and the
    sprite's coverage [H, W] (its mask is coverage >= 0.5)."""
    height, width = bg.shape[:2]
    base, ink_col = subject_colours(subject)
    cover_hi, ink_hi = _sprite_layers(subject, cx, cy, radius, angle, width, height)
    alpha = _downsample(cover_hi)
    return blend(bg, alpha[..., None], _downsample(ink_hi)[..., None], base, ink_col), alpha


def subject_colours(subject: Subject) -> tuple[np.ndarray, np.ndarray]:
    """float32 base and ink colours [3] of a subject, as the renderer blends them."""
    return np.float32(vocab.colour_rgb(subject.colour)), np.float32(
        vocab.ink_rgb(subject.colour, subject.texture, subject.colour2)
    )


def blend(bg: np.ndarray, alpha: np.ndarray, ink: np.ndarray, base: np.ndarray, ink_col: np.ndarray) -> np.ndarray:
    """uint8 pixels of coverage alpha, of which ink shows the ink colour, over bg (float32, broadcast). Coverage and
    ink are multiples of 1 / SUPERSAMPLE**2, which lets the probe invert this exactly on lossless frames."""
    img = bg * (1 - alpha) + (alpha - ink) * base + ink * ink_col
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


def render_clip(spec: ClipSpec) -> Clip:
    width, height = spec.width, spec.height
    bg = background_image(spec.background, width, height)
    path = absolute_path(spec)
    frames = np.empty((spec.frames, height, width, 3), np.uint8)
    masks = np.empty((spec.frames, height, width), bool)
    boxes = np.zeros((spec.frames, 4), np.float32)
    for f in range(spec.frames):
        radius = spec.size / 2 * path.scale[f]
        frames[f], alpha = composite(spec.subject, bg, path.cx[f], path.cy[f], radius, path.angle[f])
        masks[f] = alpha >= 0.5
        boxes[f] = mask_box(masks[f])
    return Clip(frames, masks, boxes, spec)
