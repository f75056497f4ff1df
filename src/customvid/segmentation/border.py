"""A weight-free segmenter for a subject on a background that shows at the image border.

1. Background colours: k-means of a thin border band; clusters holding under 10 % of the band are dropped, so a
   subject that reaches the edge does not become "background". Several clusters model tiled and gradient
   backgrounds, which one median colour cannot.
2. Seeds: pixels far from every background colour (Otsu on that distance, at least 20), in components of at
   least a fifth of the largest.
3. Subject colours: k-means (2: a base colour and a pattern's second colour) of the pixels that stand out from
   the background noise, connected to the seeds, one pixel inside their outline (edge pixels are mixtures).
   A pattern colour close to the background (dark stripes on a dark background) falls below Otsu but is found
   here.
4. Mask: pixels nearer a subject colour than a background colour, in components that hold a seed. A pixel half
   covered is half-way between the two colours, so this boundary is where coverage is 0.5 (ties go to the
   subject), and holes of background colour (a ring's) stay holes.
"""

from __future__ import annotations

import cv2
import numpy as np

from customvid.segmentation.base import colour_distance, kmeans

BAND = 0.03  # border band, fraction of the short side (at least 1 px)
BACKGROUND_CLUSTERS = 4
MIN_SHARE = 0.1  # of the band: smaller clusters are subject (or noise), not background
MIN_SEED_DISTANCE = 20.0  # RGB units: Otsu's split of a nearly flat image is noise
MIN_SEED_AREA = 0.2  # of the largest seed component
SUBJECT_CLUSTERS = 2
TIE = 2.0  # RGB units in the subject's favour: the true mask counts coverage >= 0.5


def _border_pixels(image: np.ndarray, band: int) -> np.ndarray:
    return np.concatenate(
        [image[:band].reshape(-1, 3), image[-band:].reshape(-1, 3),
         image[:, :band].reshape(-1, 3), image[:, -band:].reshape(-1, 3)]
    )


def _seeded(mask: np.ndarray, seeds: np.ndarray) -> np.ndarray:
    """The 8-connected components of `mask` that contain a seed pixel."""
    _, labels = cv2.connectedComponents(mask.astype(np.uint8), connectivity=8)
    ids = np.unique(labels[seeds & mask])
    return np.isin(labels, ids[ids > 0])


def segment_border(image: np.ndarray) -> np.ndarray:
    """uint8 [H, W, 3] -> bool [H, W] subject mask (empty when nothing stands out from the border)."""
    h, w = image.shape[:2]
    band = _border_pixels(image, max(1, round(min(h, w) * BAND)))
    centres, labels = kmeans(band, BACKGROUND_CLUSTERS)
    share = np.bincount(labels, minlength=len(centres)) / len(labels)
    background = centres[share >= MIN_SHARE]
    dist = colour_distance(image, background)

    otsu, _ = cv2.threshold(np.clip(dist, 0, 255).astype(np.uint8), 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    n, comp, stats, _ = cv2.connectedComponentsWithStats((dist > max(otsu, MIN_SEED_DISTANCE)).astype(np.uint8), 8)
    if n <= 1:
        return np.zeros((h, w), bool)
    areas = stats[1:, cv2.CC_STAT_AREA]
    seeds = np.isin(comp, 1 + np.nonzero(areas >= MIN_SEED_AREA * areas.max())[0])

    # the background's own spread (noise, gradient between cluster centres) measured on its band pixels
    in_background = (share >= MIN_SHARE)[labels]
    noise = float(np.percentile(colour_distance(band[in_background][:, None], background), 99))
    region = _seeded(dist > max(8.0, 2 * noise), seeds)
    inner = cv2.erode(region.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
    subject, _ = kmeans(image[inner] if inner.sum() >= SUBJECT_CLUSTERS else image[seeds], SUBJECT_CLUSTERS)
    return _seeded(colour_distance(image, subject) <= dist + TIE, seeds)
