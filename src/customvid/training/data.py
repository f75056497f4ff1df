"""Training data streamed from the toy world: clip i of the train split is a pure function of (seed, i), so a
resumed run sees exactly the batches it would have seen, and no dataset has to be stored."""

from __future__ import annotations

import numpy as np
import torch

from customvid.world import make_caption, render_clip, sample_spec
from customvid.world.splits import build_spec


def frames_to_tensor(frames: np.ndarray | torch.Tensor) -> torch.Tensor:
    """uint8 [..., H, W, 3] -> float [..., 3, H, W] in [-1, 1]."""
    x = frames if isinstance(frames, torch.Tensor) else torch.from_numpy(np.ascontiguousarray(frames))
    x = x.float().div(127.5).sub(1.0)
    return x.movedim(-1, -3)


def clip_batch(
    step: int, batch_size: int, seed: int, frames: int, size: int
) -> tuple[torch.Tensor, list[str], torch.Tensor]:
    """[B, 3, F, H, W] clips, captions and subject masks [B, F, H, W] for one step; the caption's template and
    paraphrase are resampled per draw so the model learns meanings, not strings."""
    videos, captions, masks = [], [], []
    for j in range(batch_size):
        index = step * batch_size + j
        spec = sample_spec("train", index, seed, frames=frames, width=size, height=size)
        rng = np.random.default_rng([seed, 7, index])
        clip = render_clip(spec)
        videos.append(frames_to_tensor(clip.frames).movedim(0, 1))  # [3, F, H, W]
        masks.append(torch.from_numpy(clip.masks))
        captions.append(make_caption(spec.subject, spec.motion, spec.background, rng))
    return torch.stack(videos), captions, torch.stack(masks)


def same_caption_specs(step: int, j: int, batch_size: int, seed: int, frames: int, size: int, n: int) -> list:
    """n more clip specs of what sample j of clip_batch(step) shows (same subject, motion and background: the same
    caption's meaning), each with its own size, speed and placement; a pure function of its arguments."""
    index = step * batch_size + j
    spec = sample_spec("train", index, seed, frames=frames, width=size, height=size)
    rng = np.random.default_rng([seed, 11, index])
    return [build_spec(spec.subject, spec.motion, spec.background, rng, frames, size, size) for _ in range(n)]


def render_frames(specs) -> torch.Tensor:
    """uint8 [n, F, H, W, 3] renders of n clip specs (a quarter of the float clips' size, for passing between
    processes)."""
    return torch.stack([torch.from_numpy(render_clip(s).frames) for s in specs])


def frames_to_clips(frames: torch.Tensor) -> torch.Tensor:
    """uint8 [..., n, F, H, W, 3] -> [..., n, 3, F, H, W] in [-1, 1]."""
    return frames_to_tensor(frames).movedim(-4, -3)


def render_clips(specs) -> torch.Tensor:
    """[n, 3, F, H, W] renders of n clip specs, in [-1, 1]."""
    return frames_to_clips(render_frames(specs))


def image_batch(step: int, batch_size: int, seed: int, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """[B, 3, H, W] single frames of train clips (for the VAE) and their subject masks [B, 1, H, W]."""
    frames, masks = [], []
    for j in range(batch_size):
        index = step * batch_size + j
        spec = sample_spec("train", index, seed + 1, frames=4, width=size, height=size)
        clip = render_clip(spec)
        frames.append(frames_to_tensor(clip.frames[index % 4]))
        masks.append(torch.from_numpy(clip.masks[index % 4]).float()[None])
    return torch.stack(frames), torch.stack(masks)
