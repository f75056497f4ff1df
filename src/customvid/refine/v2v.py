"""Video-to-video: encode a clip, noise it to a strength, denoise with the prompt (and adapters), decode.

`video_to_video` takes clips exactly in the model's format; `refine_clip` takes any size and length: it resizes
to the model's size, runs model-length windows and resizes back (what region and tiled refinement build on).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import cv2
import numpy as np
import torch

from customvid.errors import CustomvidError
from customvid.models.components import Components


def _clips(frames: Any) -> tuple[np.ndarray, bool]:
    """uint8 [F,H,W,3] or [B,F,H,W,3] -> [B,F,H,W,3] and whether a single clip was given."""
    arr = np.asarray(frames)
    if arr.dtype != np.uint8 or arr.ndim not in (4, 5) or arr.shape[-1] != 3:
        raise CustomvidError(f"expected uint8 frames [F,H,W,3] or [B,F,H,W,3], got {arr.dtype} {list(arr.shape)}")
    return (arr[None], True) if arr.ndim == 4 else (arr, False)


@torch.no_grad()
def video_to_video(
    components: Components,
    frames: np.ndarray,
    prompt: str | Sequence[str],
    strength: float,
    num_inference_steps: int = 20,
    guidance_scale: float = 7.5,
    seed: int | Sequence[int] | None = 0,
    adapters: Sequence[Any] = (),
    noise: str = "iid",
    negative_prompt: str = "",
    solver: str = "ddim",
    progress: bool = False,
) -> np.ndarray:
    """Partially re-denoise uint8 clips [F,H,W,3] (or a batch [B,F,H,W,3]) -> uint8 of the same shape.

    The clip must have the model's frame count and a size that is a multiple of the VAE's factor. strength in
    (0, 1]: the share of the `num_inference_steps` schedule that runs (see `generate`); clip i of a batch is
    noised with seed + i, so a batch gives each clip its own deterministic noise.
    """
    from customvid.sampling import generate, latent_shape
    from customvid.training.subject import encode_clips

    clips, single = _clips(frames)
    b, f, h, w, _ = clips.shape
    if f != components.default_frames:
        raise CustomvidError(f"video_to_video needs the model's {components.default_frames} frames, got {f}")
    latent_shape(components, b, f, h, w)  # size check before the VAE sees it
    prompts = [prompt] * b if isinstance(prompt, str) else list(prompt)
    init = encode_clips(components.vae, clips).to(components.dtype)
    out = generate(components, prompts, negative_prompt=negative_prompt, num_frames=f, height=h, width=w,
                   num_inference_steps=num_inference_steps, guidance_scale=guidance_scale, seed=seed, solver=solver,
                   noise=noise, adapters=adapters, init_latents=init, strength=strength, progress=progress)
    return out.frames[0] if single else out.frames


def resize_frames(frames: np.ndarray, height: int, width: int) -> np.ndarray:
    """uint8 [..., H, W, 3] -> [..., height, width, 3]: bicubic when enlarging, area averaging when shrinking
    (no aliasing); the same array when the size already matches."""
    h, w = frames.shape[-3:-1]
    if (h, w) == (height, width):
        return frames
    method = cv2.INTER_AREA if height <= h and width <= w else cv2.INTER_CUBIC
    flat = frames.reshape(-1, h, w, 3)
    out = np.stack([cv2.resize(x, (width, height), interpolation=method) for x in flat])
    return out.reshape(*frames.shape[:-3], height, width, 3)


def windows(total: int, length: int, overlap: int = 0) -> list[int]:
    """Start offsets of `length`-long windows covering `total` (frames of a clip, or pixels for tiles), neighbours
    overlapping by at least `overlap`; the last one is moved back to end at the end (so it overlaps its
    neighbour rather than running past it)."""
    if total <= length:
        return [0]
    starts = list(range(0, total - length, max(1, length - overlap)))
    return [*starts, total - length]


def refine_clip(components: Components, frames: np.ndarray, prompt: str, strength: float, **kwargs: Any) -> np.ndarray:
    """`video_to_video` for clips of any size and length ([F,h,w,3] or [B,F,h,w,3]): resized to the model's
    size, run in model-length windows (a shorter clip is padded with its last frame), resized back. kwargs go
    to `video_to_video`; every window uses the same seed."""
    clips, single = _clips(frames)
    f, h, w = clips.shape[1:4]
    length = components.default_frames
    x = resize_frames(clips, *components.default_size)
    if f < length:
        x = np.concatenate([x, np.repeat(x[:, -1:], length - f, axis=1)], axis=1)
    out = np.empty_like(x)
    for start in windows(x.shape[1], length):  # the moved-back last window rewrites its overlap
        out[:, start : start + length] = video_to_video(components, x[:, start : start + length], prompt, strength,
                                                        **kwargs)
    result = resize_frames(out[:, :f], h, w)
    return result[0] if single else result
