"""Shape and pose by template matching in a normalised frame.

Each frame's subject coverage (soft alpha) is resampled around its centroid and scaled to unit area, then
compared with every shape rendered the same way at every angle in its symmetry period and a few edge blurs.
The best template gives the shape, its angle (modulo the symmetry), radius and the sprite's own origin (the
rotation centre the renderer moves), from which a sub-pixel box follows.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache, lru_cache

import cv2
import numpy as np
from PIL import Image, ImageDraw

from customvid.world import vocab
from customvid.world.shapes import OUTLINES

N = 24  # template side
EXTENT = 1.3  # half-width of the template window, in units of sqrt(area)
ANGLE_STEP = np.deg2rad(3.0)
# Template edge blurs (std, normalised units): small sprites are pixelated, videos blurred or smoothed. Each frame
# is matched against the level whose edge width is nearest its own.
BLURS = (0.0, 0.04, 0.07, 0.1, 0.14, 0.19, 0.25)
SYMMETRY = {"circle": 0, "ring": 0, "square": 4, "triangle": 3, "star": 5, "heart": 1, "diamond": 2,
            "hexagon": 6, "cross": 4}  # rotational order; 0 = any angle looks the same


@dataclass(frozen=True)
class Geometry:
    area: float  # polygon area at radius 1
    centroid: np.ndarray  # area centroid at radius 1, angle 0 (sprite coordinates)


def rotation(theta: float) -> np.ndarray:
    return np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])


def _fill(shape: str, to_px, size: int, supersample: int) -> np.ndarray:
    """Coverage [size, size] of the shape's outline mapped to canvas pixels by to_px (unit coords -> px)."""
    s = supersample
    canvas = Image.new("L", (size * s, size * s), 0)
    draw = ImageDraw.Draw(canvas)
    outer, hole = OUTLINES[shape]
    draw.polygon([tuple(q) for q in to_px(outer) * s], fill=255)
    if hole is not None:
        draw.polygon([tuple(q) for q in to_px(hole) * s], fill=0)
    img = np.asarray(canvas, np.float32) / 255.0
    return img.reshape(size, s, size, s).mean(axis=(1, 3))


@cache
def geometry(shape: str) -> Geometry:
    size, half = 512, 1.1
    cov = _fill(shape, lambda p: (p + half) / (2 * half) * size, size, 1)
    yy, xx = np.mgrid[0:size, 0:size]
    m = cov.sum()
    cx = ((xx + 0.5) * cov).sum() / m / size * 2 * half - half
    cy = ((yy + 0.5) * cov).sum() / m / size * 2 * half - half
    return Geometry(float(m * (2 * half / size) ** 2), np.array([cx, cy]))


def shape_angles(shape: str) -> np.ndarray:
    k = SYMMETRY[shape]
    if k == 0:
        return np.zeros(1)
    return np.arange(0.0, 2 * np.pi / k - 1e-9, ANGLE_STEP)


@dataclass(frozen=True)
class TemplateBank:
    shapes: list[str]
    shape_idx: np.ndarray  # [T] index into shapes
    angles: np.ndarray  # [T]
    blur_idx: np.ndarray  # [T]
    flat: np.ndarray  # float32 [T, N*N]
    sq: np.ndarray  # float32 [T] squared norms
    level_width: np.ndarray  # [L] mean edge width (edge_width) of each blur level's templates


@lru_cache(maxsize=1)
def template_bank() -> TemplateBank:
    """All templates, built once per process (~0.2 s)."""
    shapes = list(vocab.ALL_SHAPES)
    px_per_unit = N / (2 * EXTENT)
    rows, s_idx, angs, b_idx = [], [], [], []
    for i, shape in enumerate(shapes):
        g = geometry(shape)
        scale = 1.0 / np.sqrt(g.area)
        for theta in shape_angles(shape):
            rot = rotation(theta)

            def to_px(p, rot=rot, g=g, scale=scale):
                return ((p - g.centroid) @ rot.T * scale + EXTENT) * px_per_unit

            base = _fill(shape, to_px, N, 8)
            for j, sigma in enumerate(BLURS):
                rows.append((cv2.GaussianBlur(base, (0, 0), sigma * px_per_unit) if sigma else base).ravel())
                s_idx.append(i)
                angs.append(theta)
                b_idx.append(j)
    flat = np.stack(rows).astype(np.float32)
    b_idx = np.array(b_idx)
    widths = edge_width(flat.reshape(-1, N, N))
    level_width = np.array([widths[b_idx == j].mean() for j in range(len(BLURS))])
    return TemplateBank(shapes, np.array(s_idx), np.array(angs), b_idx, flat, (flat**2).sum(1), level_width)


def edge_width(patches: np.ndarray) -> np.ndarray:
    """How soft the edges of coverage patches [P, N, N] are: sum a(1 - a) / sum |grad a|, which for a straight
    edge blurred by a Gaussian of std sigma is sigma / sqrt(pi), whatever the shape's perimeter."""
    a = np.clip(patches, 0, 1)
    gy, gx = np.gradient(a, axis=(1, 2))
    return (a * (1 - a)).sum(axis=(1, 2)) / np.maximum(np.hypot(gx, gy).sum(axis=(1, 2)), 1e-6)


def normalised_patch(alpha: np.ndarray) -> tuple[np.ndarray, float, float, float]:
    """Resample a single-blob coverage map [H, W] to the template frame. Returns (patch [N, N], cx, cy, s) with
    (cx, cy) the coverage centroid in pixel coordinates (pixel i spans [i, i+1)) and s = sqrt(area)."""
    m = float(alpha.sum())
    h, w = alpha.shape
    ys, xs = np.mgrid[0:h, 0:w]
    cx = float(((xs + 0.5) * alpha).sum() / m)
    cy = float(((ys + 0.5) * alpha).sum() / m)
    s = np.sqrt(m)
    step = 2 * EXTENT * s / N  # source px per template px
    src = cv2.GaussianBlur(alpha, (0, 0), 0.45 * step) if step > 1.2 else alpha
    off = -EXTENT * s + 0.5 * step - 0.5  # cv2 puts pixel centres on integers
    mat = np.float32([[step, 0, cx + off], [0, step, cy + off]])
    patch = cv2.warpAffine(src, mat, (N, N), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                           borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    return patch, cx, cy, s


def match_shapes(patches: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """patches [F, N, N] -> (errors [F, S], best angle [F, S]), each frame against its own blur level."""
    bank = template_bank()
    p = patches.reshape(len(patches), -1).astype(np.float32)
    level = np.argmin(np.abs(edge_width(patches)[:, None] - bank.level_width[None, :]), axis=1)
    n_shapes = len(bank.shapes)
    errors = np.full((len(p), n_shapes), np.inf)
    angles = np.zeros((len(p), n_shapes))
    for lv in np.unique(level):
        rows = np.nonzero(level == lv)[0]
        cols_lv = np.nonzero(bank.blur_idx == lv)[0]
        # einsum, not BLAS: multithreaded BLAS on products this small can be 100x slower on a busy machine
        cross = np.einsum("fp,tp->ft", p[rows], bank.flat[cols_lv])
        sse = (p[rows] ** 2).sum(1)[:, None] + bank.sq[cols_lv][None, :] - 2 * cross
        for i in range(n_shapes):
            sel = np.nonzero(bank.shape_idx[cols_lv] == i)[0]
            j = np.argmin(sse[:, sel], axis=1)
            errors[rows, i] = sse[np.arange(len(rows)), sel[j]] / (N * N)
            angles[rows, i] = bank.angles[cols_lv[sel[j]]]
    return errors, angles


def sprite_pose(shape: str, centroid: np.ndarray, sqrt_area: float, angle: float) -> tuple[np.ndarray, float]:
    """(origin [2], radius) of the sprite whose coverage has this centroid and area at this angle."""
    g = geometry(shape)
    radius = sqrt_area / np.sqrt(g.area)
    origin = centroid - radius * (rotation(angle) @ g.centroid)
    return origin, float(radius)


def template_box(shape: str, origin: np.ndarray, radius: float, angle: float) -> np.ndarray:
    """x1, y1, x2, y2 of the outline at this pose, rounded outward to the renderer's 1/4-px supersampling."""
    pts = OUTLINES[shape][0] @ rotation(angle).T * radius + origin
    lo, hi = pts.min(0), pts.max(0)
    return np.array([np.floor(lo[0] * 4) / 4, np.floor(lo[1] * 4) / 4, np.ceil(hi[0] * 4) / 4,
                     np.ceil(hi[1] * 4) / 4])


def coverage(shape: str, origin: np.ndarray, radius: float, angle: float, height: int, width: int) -> np.ndarray:
    """The renderer's coverage [H, W] of the sprite at this pose (4x supersampled polygon fill), drawn only in a
    window around it."""
    rot = rotation(angle)
    out = np.zeros((height, width), np.float32)
    x0 = int(np.clip(np.floor(origin[0] - radius - 2), 0, width))
    y0 = int(np.clip(np.floor(origin[1] - radius - 2), 0, height))
    x1 = int(np.clip(np.ceil(origin[0] + radius + 2), 0, width))
    y1 = int(np.clip(np.ceil(origin[1] + radius + 2), 0, height))
    if x1 <= x0 or y1 <= y0:
        return out
    s = 4
    canvas = Image.new("L", ((x1 - x0) * s, (y1 - y0) * s), 0)
    draw = ImageDraw.Draw(canvas)
    outer, hole = OUTLINES[shape]
    shift = np.array([x0, y0])
    draw.polygon([tuple(q) for q in (outer @ rot.T * radius + origin - shift) * s], fill=255)
    if hole is not None:
        draw.polygon([tuple(q) for q in (hole @ rot.T * radius + origin - shift) * s], fill=0)
    img = np.asarray(canvas, np.float32) / 255.0
    out[y0:y1, x0:x1] = img.reshape(y1 - y0, s, x1 - x0, s).mean(axis=(1, 3))
    return out


def continuous_angles(angles: np.ndarray, shape: str) -> np.ndarray:
    """Pick, among the angles a k-fold shape cannot tell apart, a track that starts nearest upright and then
    turns as little as possible per frame. This matters where the sprite's origin is not its centroid (the
    triangle): each of the k readings puts the origin elsewhere."""
    k = SYMMETRY[shape]
    if k == 0 or len(angles) == 0:
        return np.zeros_like(angles) if k == 0 else angles
    period = 2 * np.pi / k
    out = np.empty_like(angles)
    prev = 0.0
    for i, a in enumerate(angles):
        out[i] = prev + ((a - prev + period / 2) % period - period / 2)
        prev = out[i]
    return out
