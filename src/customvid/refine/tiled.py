"""Tiled upscaling (Magic-Me's Tiled VCD): x2 bicubic, then each model-size tile re-denoised lightly.

The tiles overlap (a quarter of a tile by default; the paper uses 32 px of 512) and are blended with feathered
weights that sum to one everywhere, so a tile's edge never shows as a seam. Tile i is seeded `seed + i`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from customvid.models.components import Components
from customvid.refine.region import feather_weights
from customvid.refine.v2v import refine_clip, resize_frames, windows

DEFAULT_STRENGTH = 0.2  # the paper's: sharpen and add detail without changing content
OVERLAP_FRACTION = 0.25
SCALE = 2


def blend_tiles(tiles: np.ndarray, positions: list[tuple[int, int]], height: int, width: int,
                feather: tuple[float, float]) -> np.ndarray:
    """Tiles [N, F, th, tw, 3] at (y, x) positions -> uint8 [F, height, width, 3], each pixel the feathered-weight
    average of the tiles covering it (feather: px in y and x)."""
    n, f, th, tw, _ = tiles.shape
    weights = feather_weights(th, tw, *feather)
    acc = np.zeros((f, height, width, 3), np.float32)
    total = np.zeros((height, width, 1), np.float32)
    for (y, x), tile in zip(positions, tiles, strict=True):
        acc[:, y : y + th, x : x + tw] += weights[..., None] * tile
        total[y : y + th, x : x + tw] += weights[..., None]
    return np.round(acc / total).clip(0, 255).astype(np.uint8)


def tiled_upscale(
    components: Components,
    frames: np.ndarray,
    prompt: str,
    strength: float = DEFAULT_STRENGTH,
    overlap: float = OVERLAP_FRACTION,
    seed: int | None = 0,
    batch_size: int = 4,
    **kwargs: Any,
) -> np.ndarray:
    """uint8 [F, H, W, 3] -> [F, 2H, 2W, 3]: bicubic x2, then every model-size tile (smaller if the image is)
    re-denoised at `strength`, `batch_size` tiles per call. kwargs go to `video_to_video`."""
    frames = np.asarray(frames)
    f, h, w, _ = frames.shape
    big = resize_frames(frames, SCALE * h, SCALE * w)
    th, tw = min(components.default_size[0], SCALE * h), min(components.default_size[1], SCALE * w)
    oy, ox = round(th * overlap), round(tw * overlap)
    positions = [(y, x) for y in windows(SCALE * h, th, oy) for x in windows(SCALE * w, tw, ox)]
    tiles = np.stack([big[:, y : y + th, x : x + tw] for y, x in positions])
    refined = np.concatenate([
        refine_clip(components, tiles[i : i + batch_size], prompt, strength,
                    seed=None if seed is None else seed + i, **kwargs)
        for i in range(0, len(tiles), batch_size)
    ])
    return blend_tiles(refined, positions, SCALE * h, SCALE * w, (oy, ox))
