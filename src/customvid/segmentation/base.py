"""What every segmenter shares: input checks, a working-size cap, colour clustering, and mask IoU."""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np

from customvid.errors import CustomvidError

MAX_SIDE = 512  # px: larger photos are segmented downscaled (the masks are resized back); cost grows with area


def check_images(images) -> np.ndarray:
    """uint8 [N, H, W, 3] (a single [H, W, 3] image becomes N = 1)."""
    arr = np.asarray(images)
    if arr.ndim == 3:
        arr = arr[None]
    if arr.ndim != 4 or arr.shape[-1] != 3 or arr.dtype != np.uint8 or 0 in arr.shape:
        raise CustomvidError(f"segmentation needs uint8 RGB images [N, H, W, 3], got {arr.dtype} {list(arr.shape)}")
    return arr


def at_working_size(fn: Callable[[np.ndarray], np.ndarray], image: np.ndarray) -> np.ndarray:
    """fn(image) -> bool [H, W], run at most MAX_SIDE px on the long side."""
    h, w = image.shape[:2]
    scale = MAX_SIDE / max(h, w)
    if scale >= 1:
        return fn(image)
    small = cv2.resize(image, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
    mask = fn(small).astype(np.float32)
    return cv2.resize(mask, (w, h), interpolation=cv2.INTER_LINEAR) >= 0.5


def kmeans(pixels: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Deterministic k-means of colours [M, 3]: centres [k', 3] (k' <= k distinct colours) and labels [M]."""
    pixels = np.float32(pixels).reshape(-1, 3)
    k = max(1, min(k, len(np.unique(pixels, axis=0))))
    criteria = (cv2.TERM_CRITERIA_EPS + cv2.TERM_CRITERIA_MAX_ITER, 20, 0.5)
    cv2.setRNGSeed(0)
    _, labels, centres = cv2.kmeans(pixels, k, None, criteria, 3, cv2.KMEANS_PP_CENTERS)
    return centres, labels.ravel()


def colour_distance(image: np.ndarray, centres: np.ndarray) -> np.ndarray:
    """Per pixel, the Euclidean RGB distance to the nearest of `centres` [K, 3]: float32 [H, W]."""
    f = image.astype(np.float32)
    return np.min(np.linalg.norm(f[..., None, :] - centres, axis=-1), axis=-1)


def mask_ious(pred, true) -> np.ndarray:
    """IoU of each predicted mask with its true one: bool [N, H, W] (or [H, W]) each -> float [N]. Two empty
    masks agree perfectly (1.0)."""
    p, t = np.asarray(pred, bool), np.asarray(true, bool)
    if p.shape != t.shape:
        raise CustomvidError(f"mask shapes differ: {list(p.shape)} vs {list(t.shape)}")
    p, t = p.reshape(-1, *p.shape[-2:]), t.reshape(-1, *t.shape[-2:])
    inter = (p & t).sum(axis=(1, 2))
    union = (p | t).sum(axis=(1, 2))
    return np.where(union > 0, inter / np.maximum(union, 1), 1.0)


def mask_iou(pred, true) -> float:
    """IoU of one mask pair, or the mean over a batch [N, H, W]."""
    return float(mask_ious(pred, true).mean())
