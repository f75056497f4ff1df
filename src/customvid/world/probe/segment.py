"""Foreground from the background model: colour names, per-pixel coverage (alpha), masks and blobs.

The renderer composites p = B (1 - alpha) + alpha S, with S the subject's own colour there (base, ink, or a
mix). So a pixel's coverage is its position on the line from the background B to S, and alpha >= 0.5
reproduces the renderer's coverage >= 0.5 masks, also at anti-aliased or blurred edges. S is taken from the
subject's inside next to the pixel; where no inside is near, from the palette readings.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from customvid.world import vocab

NAMES = list(vocab.ALL_COLOURS)
PALETTE = np.array([vocab.ALL_COLOURS[n] for n in NAMES], np.float32)
# Full colours, then the 0.5x shades that base textures use as ink.
SWATCHES = np.concatenate([PALETTE, 0.5 * PALETTE])
CLEAR_COLOUR_RESIDUAL = 30.0  # ... and off it by less than this (and well covered) to vote clearly
MAX_COLOUR_RESIDUAL = 45.0  # grey levels off a background-to-swatch line before a pixel counts for no colour
MIN_BLOB_AREA = 5  # px: smaller specks are noise, not a subject (the smallest world sprite covers ~12 px)
LOCAL_SIGMA = 1.2  # px: how far an edge pixel looks inside for its subject colour
SECOND_COLOUR_SHARE = 0.04  # a second colour covering this share of the inside makes a two-colour texture


@dataclass
class Colours:
    name: str | None
    name2: str | None  # second palette colour of a two-colour texture
    c1: np.ndarray  # observed base colour (float32 [3]); includes jitter
    c2: np.ndarray  # observed ink colour
    votes: dict[str, float] = field(default_factory=dict)
    frame_names: list[str | None] = field(default_factory=list)  # each frame's own dominant colour


def foreground_threshold(noise: float) -> float:
    """Grey-level distance from the background model beyond which a (denoised) pixel is surely foreground:
    smoothing leaves about a third of the noise, so this is ~5 sigma of what remains."""
    return max(30.0, 3.0 * noise)


def denoise(x: np.ndarray, noise: float) -> np.ndarray:
    """Light Gaussian smoothing of noisy frames (float32 [F, H, W, 3]); clean ones pass untouched."""
    if noise < 3.0:
        return x
    sigma = 0.6 if noise < 6.0 else 0.85
    return np.stack([cv2.GaussianBlur(f, (0, 0), sigma) for f in x])


def fit_swatches(p: np.ndarray, bg: np.ndarray, swatches: np.ndarray = SWATCHES) -> tuple[np.ndarray, ...]:
    """For pixels p [N, 3] over background bg [N, 3]: the swatch whose background-to-swatch line passes nearest,
    its coverage along that line, and the distance off it."""
    d = p - bg  # [N, 3]
    axes = swatches[None, :, :] - bg[:, None, :]  # [N, K, 3]
    alpha = np.einsum("nc,nkc->nk", d, axes) / np.maximum(np.einsum("nkc,nkc->nk", axes, axes), 1.0)
    alpha = np.clip(alpha, 0.0, 1.5)
    res = np.linalg.norm(d[:, None, :] - alpha[..., None] * axes, axis=2)
    k = np.argmin(res, axis=1)
    rows = np.arange(len(p))
    return k, alpha[rows, k], res[rows, k]


def estimate_colours(x: np.ndarray, bg: np.ndarray, fg: np.ndarray) -> Colours:
    """Colour names from the foreground pixels fg (bool [F, H, W]) of frames x over background image bg: the
    dominant colour from every pixel's background-to-swatch line, a second colour from the subject's inside."""
    p = x[fg]
    b = np.broadcast_to(bg, x.shape)[fg]
    if len(p) == 0:
        return Colours(None, None, np.zeros(3, np.float32), np.zeros(3, np.float32))
    k, alpha, res = fit_swatches(p, b)
    ok = res < MAX_COLOUR_RESIDUAL
    full = k < len(NAMES)
    name_idx = k % len(NAMES)
    # vote with well-covered pixels that sit squarely on a swatch line: half-covered mixes of two subject
    # colours (blurred stripes of orange and blue) pass for a pale third colour; tiny subjects vote with all
    clear = (res < CLEAR_COLOUR_RESIDUAL) & (alpha > 0.6)
    weight = np.clip(alpha, 0, 1) * (clear if clear.sum() >= 4 else ok)
    votes = np.bincount(name_idx, weights=weight, minlength=len(NAMES))
    first = int(np.argmax(votes))
    frame_of = np.nonzero(fg)[0]
    per_frame = np.bincount(frame_of * len(NAMES) + name_idx, weights=weight,
                            minlength=len(fg) * len(NAMES)).reshape(len(fg), len(NAMES))
    frame_names = [NAMES[int(np.argmax(v))] if v.max() > 0 else None for v in per_frame]
    c1 = _observed(p, ok & full & (name_idx == first) & (alpha > 0.8), PALETTE[first])
    inside = np.stack([cv2.erode(m.astype(np.uint8), np.ones((3, 3), np.uint8)) for m in fg]).astype(bool)
    second, c2 = second_colour(x[inside], c1, first)
    if second is None:
        c2 = _observed(p, ok & ~full & (name_idx == first) & (alpha > 0.8), 0.5 * c1, min_count=8)
    return Colours(NAMES[first], None if second is None else NAMES[second], c1, c2,
                   {NAMES[i]: float(v) for i, v in enumerate(votes) if v > 0}, frame_names)


def second_colour(p: np.ndarray, c1: np.ndarray, first: int) -> tuple[int | None, np.ndarray]:
    """The palette colour (index) that the subject's inside pixels p [N, 3] mix with besides base colour c1, if
    any shows often enough, and its observed value. Candidates: every other palette colour and c1's own shade
    (the ink of base textures, which never makes a second colour)."""
    if len(p) < 4:
        return None, 0.5 * c1
    others = [i for i in range(len(NAMES)) if i != first]
    cands = np.concatenate([0.5 * c1[None], PALETTE[others]])
    axes = cands - c1  # [K, 3]
    d = p - c1
    beta = np.clip(d @ axes.T / (axes**2).sum(1), 0.0, 1.2)  # [N, K]
    res = np.linalg.norm(d[:, None, :] - beta[..., None] * axes[None], axis=2)
    tol = 20.0 + 0.25 * beta * np.linalg.norm(axes, axis=1)[None, :]  # palette colours drift under jitter
    score = np.where((res < tol) & (beta > 0.25), res, np.inf)
    best = np.argmin(score, axis=1)
    hit = np.isfinite(score[np.arange(len(p)), best])
    votes = np.bincount(best[hit], weights=beta[np.arange(len(p)), best][hit], minlength=len(cands))
    k = int(np.argmax(votes[1:])) + 1
    if votes[k] < SECOND_COLOUR_SHARE * len(p) or votes[k] < 3:
        return None, 0.5 * c1
    sel = hit & (best == k) & (beta[:, k] > 0.8)
    idx = others[k - 1]
    return idx, _observed(p, sel, PALETTE[idx])


def _observed(p: np.ndarray, sel: np.ndarray, fallback: np.ndarray, min_count: int = 3) -> np.ndarray:
    if sel.sum() < min_count:
        return np.asarray(fallback, np.float32)
    return np.median(p[sel], axis=0).astype(np.float32)


def alpha_along(x: np.ndarray, bg: np.ndarray, colour: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Coverage of each pixel x [..., 3] if it mixes the background bg with `colour` ([3] or per pixel) only, and
    the distance (grey levels) of the pixel off that mixing line. Both [...]."""
    d = x - bg
    axis = colour - bg
    alpha = (d * axis).sum(-1) / np.maximum((axis * axis).sum(-1), 1.0)
    alpha = np.clip(alpha, 0.0, 1.2)
    res = np.linalg.norm(d - alpha[..., None] * axis, axis=-1)
    return alpha.astype(np.float32), res.astype(np.float32)


def _readings(p: np.ndarray, b: np.ndarray, c1: np.ndarray, c2: np.ndarray, noise: float):
    """Base-only coverage of pixels p over backgrounds b ([N, 3] each), its residual, and the best coverage among
    the base, ink and half-mix readings that fit (the generous reading)."""
    a_base, r_base = alpha_along(p, b, c1)
    best = a_base.copy()
    tol = max(20.0, 4.0 * noise)
    for colour in (c2, 0.5 * (c1 + c2)):
        a, r = alpha_along(p, b, colour)
        best = np.where((r < tol) & (a > best), a, best)
    return a_base, r_base, best, tol


def local_alpha(x: np.ndarray, bg: np.ndarray, fg: np.ndarray, c1: np.ndarray, c2: np.ndarray,
                noise: float) -> np.ndarray:
    """Coverage [F, H, W] of the subject, read only near the foreground fg (elsewhere 0).

    Pixels inside the foreground (eroded by 1 px) are subject. Each pixel around them is read against the
    subject colour next to it: a mean of the inside pixels within ~2 px, weighted towards those far from the
    background, so a blurred edge is read against the sprite's full colour rather than against its own
    half-mixed neighbours or a dark ink spot. Whatever the texture, or however blur and compression have mixed
    its colours, an edge pixel is a blend of background and that colour. Pixels with no inside nearby (tiny
    sprites) take the generous reading: the best of base, ink and their mix, near base-coloured pixels, so that
    ink stripes and caps (which on a dark background look just like anti-aliased base edges) count as subject.
    """
    kernel = np.ones((3, 3), np.uint8)
    roi = np.stack([cv2.dilate(m.astype(np.uint8), np.ones((11, 11), np.uint8)) for m in fg]).astype(bool)
    inside = np.stack([cv2.erode(m.astype(np.uint8), kernel) for m in fg]).astype(bool)
    bgf = np.broadcast_to(bg, x.shape)
    p, b = x[roi], bgf[roi]
    a_base, r_base, best, tol = _readings(p, b, c1, c2, noise)
    core = np.zeros(fg.shape, bool)
    core[roi] = (a_base >= 0.5) & (r_base < 2 * tol)
    generous = np.where(np.stack([_near(m) for m in core])[roi], best, a_base)

    w = np.where(inside, ((x - bgf) ** 2).sum(-1), 0.0).astype(np.float32)
    num = np.stack([cv2.GaussianBlur(xf * wf[..., None], (0, 0), LOCAL_SIGMA) for xf, wf in zip(x, w, strict=True)])
    den = np.stack([cv2.GaussianBlur(wf, (0, 0), LOCAL_SIGMA) for wf in w])
    support = np.stack([cv2.GaussianBlur(m.astype(np.float32), (0, 0), LOCAL_SIGMA) for m in inside])[roi] > 0.05
    local = num[roi] / np.maximum(den[roi], 1e-6)[:, None]
    a, _ = alpha_along(p, b, np.where(support[:, None], local, c1))
    alpha = np.where(inside[roi], np.maximum(a, 1.0), np.where(support, a, generous))
    # ink too close to the background to pass the foreground threshold (green shade on green) is read as ink
    faint_ink = np.linalg.norm(c2 - b, axis=-1) < 0.8 * foreground_threshold(noise)
    alpha = np.where(faint_ink & support, np.maximum(alpha, generous), alpha)
    out = np.zeros(fg.shape, np.float32)
    out[roi] = alpha
    return out


def _near(core: np.ndarray) -> np.ndarray:
    """Pixels within about half a sprite radius of the base-coloured core of one frame."""
    area = int(core.sum())
    if area == 0:
        return core
    k = 1 + int(round(0.3 * np.sqrt(area)))
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * k + 1, 2 * k + 1))
    return cv2.dilate(core.astype(np.uint8), kernel).astype(bool)


@dataclass
class Blobs:
    """Connected foreground blobs of one frame."""

    labels: np.ndarray  # int32 [H, W], 0 = background
    areas: np.ndarray  # px per label (index 0 unused)
    main: int  # label of the largest blob, 0 if none

    @property
    def count(self) -> int:
        return int((self.areas[1:] >= MIN_BLOB_AREA).sum())


def blobs(mask: np.ndarray) -> Blobs:
    """Blobs of a bool [H, W] mask; pieces within 2 px of each other are one blob (a textured sprite whose ink
    is faint must not fall apart into stripes)."""
    near = cv2.dilate(mask.astype(np.uint8), np.ones((3, 3), np.uint8))
    n, lab = cv2.connectedComponents(near, connectivity=8)
    lab = np.where(mask, lab, 0).astype(np.int32)
    areas = np.bincount(lab.ravel(), minlength=n)
    areas[0] = 0
    main = int(np.argmax(areas)) if n > 1 and areas.max() >= MIN_BLOB_AREA else 0
    return Blobs(lab, areas, main)


def pattern_ink_colour(shift: np.ndarray, c1: np.ndarray, first: str) -> str | None:
    """The palette colour a pattern's ink leans towards, given the colour change from base to ink (shift [3],
    from a regression on the pattern), when that is clearly not the base's own darker shade; else None.
    Blur mixes small two-colour spots into the base, so the second colour may never show pure, but the
    direction of the change still names it (yellow -> purple raises blue; yellow -> dark yellow does not)."""
    norm = float(np.linalg.norm(shift))
    if norm < 1.0:
        return None

    def cos(d: np.ndarray) -> float:
        return float(shift @ d / (norm * max(float(np.linalg.norm(d)), 1e-6)))

    shade = cos(-0.5 * c1)
    others = [(cos(PALETTE[i] - c1), NAMES[i]) for i in range(len(NAMES)) if NAMES[i] != first]
    best, name = max(others)
    # a shade's change is -c1 itself (cosine ~1 even under jitter and compression); base textures' changes
    # point away from every other palette colour (cosine < 0.7 on degraded renders), two-colour inks' to theirs
    return name if best >= 0.75 and best >= shade - 0.05 else None
