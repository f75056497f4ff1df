"""Probe-accuracy benchmark: how well `customvid.world.probe.probe_video` reads rendered clips back, clean and
degraded the ways generated video is (noise, blur, colour jitter, dropped frames, mp4), each alone and combined.

    from customvid.benchmarks.probe import run_probe_benchmark, format_probe_table
    print(format_probe_table(run_probe_benchmark(n_clips=300, seed=0)))
"""

from __future__ import annotations

import io
import time
from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np

from customvid.world import vocab
from customvid.world.render import background_image, render_clip
from customvid.world.splits import sample_spec

SPLITS = ("train", "composition", "subjects", "motions")
CONDITIONS = ("clean", "noise", "blur", "jitter", "drop", "mp4", "combined")
ATTRIBUTES = ("presence", "single", "colour", "colour2", "shape", "texture", "background", "motion", "box_iou")


# ---------------------------------------------------------------- degradations (uint8 [F, H, W, 3] -> same)

def add_noise(frames: np.ndarray, rng: np.random.Generator, sigma: float = 10.0) -> np.ndarray:
    noisy = frames.astype(np.float32) + rng.normal(0.0, sigma, frames.shape).astype(np.float32)
    return np.clip(np.rint(noisy), 0, 255).astype(np.uint8)


def blur(frames: np.ndarray, rng: np.random.Generator, sigma: float = 1.0) -> np.ndarray:
    return np.stack([cv2.GaussianBlur(f, (0, 0), sigma) for f in frames])


def colour_jitter(frames: np.ndarray, rng: np.random.Generator, strength: float = 0.15) -> np.ndarray:
    """torchvision-style brightness, contrast and saturation factors in [1 - strength, 1 + strength], per clip."""
    b, c, s = rng.uniform(1 - strength, 1 + strength, 3)
    x = frames.astype(np.float32) * b
    grey = x @ np.float32([0.299, 0.587, 0.114])
    x = (x - grey.mean(axis=(1, 2))[:, None, None, None]) * c + grey.mean(axis=(1, 2))[:, None, None, None]
    grey = (x @ np.float32([0.299, 0.587, 0.114]))[..., None]
    x = grey + (x - grey) * s
    return np.clip(np.rint(x), 0, 255).astype(np.uint8)


def drop_frames(frames: np.ndarray, rng: np.random.Generator, fraction: float = 0.25) -> tuple[np.ndarray, np.ndarray]:
    """A random ~fraction of the frames removed (order kept); returns the frames and the kept indices."""
    n = len(frames)
    keep = np.sort(rng.choice(n, size=max(2, n - int(round(fraction * n))), replace=False))
    return frames[keep], keep


def mp4_roundtrip(frames: np.ndarray, rng: np.random.Generator | None = None, fps: float = 8.0,
                  crf: int = 23) -> np.ndarray:
    """H.264 (yuv420p) encode and decode in memory, as saving a generated clip does."""
    import av

    _, h, w, _ = frames.shape
    buf = io.BytesIO()
    with av.open(buf, "w", format="mp4") as out:
        stream = out.add_stream("libx264", rate=int(round(fps)))
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        stream.options = {"crf": str(crf)}
        for f in frames:
            out.mux(stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(f), format="rgb24")))
        out.mux(stream.encode())
    buf.seek(0)
    with av.open(buf) as inp:
        decoded = [fr.to_ndarray(format="rgb24") for fr in inp.decode(video=0)]
    return np.stack(decoded)


_PIXEL_DEGRADATIONS: dict[str, Callable] = {"noise": add_noise, "blur": blur, "jitter": colour_jitter,
                                            "mp4": mp4_roundtrip}


def degrade(frames: np.ndarray, condition: str, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Frames under a benchmark condition, and the indices of the original frames they show."""
    keep = np.arange(len(frames))
    if condition == "clean":
        return frames, keep
    if condition == "drop":
        return drop_frames(frames, rng)
    if condition == "combined":  # in the order a generated clip meets them
        for name in ("blur", "jitter", "noise", "mp4"):
            frames = _PIXEL_DEGRADATIONS[name](frames, rng)
        return drop_frames(frames, rng)
    if condition in _PIXEL_DEGRADATIONS:
        return _PIXEL_DEGRADATIONS[condition](frames, rng), keep
    raise ValueError(f"unknown condition {condition!r}; known: {', '.join(CONDITIONS)}")
