"""Region refinement (Magic-Me's Face VCD): re-render a small subject at the model's full resolution.

Per frame a subject box (a detector or a boxes file) -> gaps filled from neighbouring frames and the track
smoothed over time -> one square crop size for the whole clip, with a margin around the subject -> the crops,
upscaled to the model's size, re-denoised as one clip (video_to_video at `strength`) -> downscaled and pasted
back with a feathered edge. Pixels outside the crop squares are never touched.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from customvid.errors import CustomvidError
from customvid.models.components import Components
from customvid.refine.v2v import refine_clip

DETECTORS = ("probe", "haar")
# 0.6 re-renders the subject's detail but keeps the crop's layout (position, pose, motion), so the paste lines
# up with the frame around it; the paper's 0.8 is for 512 px face crops. Measured on the embedded model (base
# subjects, 14 px, no adapter, 10 steps, margin 1.0): identity kept at 0.5 and 0.6 (12 clips: 100 % -> 100 %),
# lost at 0.7 (6 clips: 67 % -> 17 %). No setting improved it without an adapter.
DEFAULT_STRENGTH = 0.6
# Box side added on each side, as a share of it: the subject fills a third of the crop, the size the world's
# training clips show (0.19-0.34 of the side). Measured as above: margin 0.5 (subject half the crop) lost
# identity at strengths 0.3-0.7 (6 clips: 67 % -> 17-50 %), 1.0 kept it, 1.5 lost some (12 clips: 100 % -> 92 %).
DEFAULT_MARGIN = 1.0
# Feather width as a share of the crop side (>= 1 px). The paper's 5 px on 512 px crops would be under a pixel
# on our 20-40 px crops.
FEATHER_FRACTION = 1 / 16
SMOOTH_SIGMA = 1.0  # frames; Gaussian smoothing of the box track


@dataclass
class RegionResult:
    frames: np.ndarray  # uint8 [F, H, W, 3]
    boxes: np.ndarray  # float [F, 4] the smoothed subject boxes, pixels
    crops: np.ndarray  # int [F, 3] x0, y0, side of each frame's crop square
    mask: np.ndarray  # float [F, H, W] paste weight: 0 = the input pixel exactly


def haar_boxes(frames: np.ndarray) -> np.ndarray:
    """The largest frontal face per frame from OpenCV's bundled Haar cascade; NaN rows where none is found."""
    path = Path(getattr(getattr(cv2, "data", None), "haarcascades", "")) / "haarcascade_frontalface_default.xml"
    if not hasattr(cv2, "CascadeClassifier") or not path.is_file():
        raise CustomvidError(f"the haar detector needs OpenCV's bundled Haar cascades (OpenCV 4.x); OpenCV "
                             f"{cv2.__version__} here has none: use --detector probe or a boxes file")
    cascade = cv2.CascadeClassifier(str(path))
    boxes = np.full((len(frames), 4), np.nan)
    for f, frame in enumerate(frames):
        faces = cascade.detectMultiScale(cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY), scaleFactor=1.1, minNeighbors=4)
        if len(faces):
            x, y, w, h = max(faces, key=lambda r: r[2] * r[3])
            boxes[f] = x, y, x + w, y + h
    return boxes


def detect_boxes(frames: np.ndarray, detector: str = "probe") -> np.ndarray:
    """Raw per-frame subject boxes [F, 4] (NaN rows: none found): 'probe' (the world probe's subject box),
    'haar' (frontal faces) or the path of a boxes file (customvid.io.boxes)."""
    if detector == "probe":
        from customvid.world.probe import probe_video

        return probe_video(frames).boxes
    if detector == "haar":
        return haar_boxes(frames)
    if detector.lower().endswith(".json"):
        from customvid.io import read_boxes

        f, h, w, _ = frames.shape
        return read_boxes(detector, f, w, h)
    raise CustomvidError(f"unknown detector {detector!r}; expected {' or '.join(DETECTORS)} or a boxes .json file")


def smooth_boxes(boxes: np.ndarray, sigma: float = SMOOTH_SIGMA) -> np.ndarray:
    """Fill frames without a box from their neighbours (linear, held at the ends), then smooth each coordinate
    over time with a Gaussian of `sigma` frames so the crop does not jitter. The ends are extended by odd
    reflection, which keeps a steady motion's track exactly (an even one would pull the ends back)."""
    boxes = np.asarray(boxes, float)
    ok = np.isfinite(boxes).all(axis=1)
    if not ok.any():
        raise CustomvidError("the detector found no subject in any frame")
    t = np.arange(len(boxes))
    filled = np.stack([np.interp(t, t[ok], boxes[ok, k]) for k in range(4)], axis=1)
    if sigma <= 0 or len(boxes) == 1:
        return filled
    radius = int(np.ceil(3 * sigma))
    kernel = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
    padded = np.pad(filled, ((radius, radius), (0, 0)), mode="reflect", reflect_type="odd")
    return np.stack([np.convolve(padded[:, k], kernel / kernel.sum(), mode="valid") for k in range(4)], axis=1)


def crop_squares(boxes: np.ndarray, margin: float, height: int, width: int) -> np.ndarray:
    """int [F, 3] (x0, y0, side): squares around the boxes' centres, inside the frame, of one side for the whole
    clip (the largest box side times 1 + 2 * margin), so the model sees the subject at one scale throughout."""
    if margin < 0:
        raise CustomvidError(f"margin must be >= 0, got {margin}")
    sides = np.maximum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1])
    side = int(np.clip(np.ceil(sides.max() * (1 + 2 * margin)), 1, min(height, width)))
    x0 = np.clip(np.round((boxes[:, 0] + boxes[:, 2] - side) / 2), 0, width - side)
    y0 = np.clip(np.round((boxes[:, 1] + boxes[:, 3] - side) / 2), 0, height - side)
    return np.stack([x0, y0, np.full(len(boxes), side)], axis=1).astype(int)


def feather_weights(height: int, width: int, feather: float, feather_x: float | None = None) -> np.ndarray:
    """float32 [height, width]: 1 inside, ramping down over `feather` px (`feather_x` across, if given) to
    1 / (feather + 1) at the border pixels (never 0, so a tile alone at an image's edge still normalises)."""

    def ramp(n: int, px: float) -> np.ndarray:
        i = np.arange(n)
        return np.clip(np.minimum(i + 1, n - i) / (px + 1), 0, 1)

    across = feather if feather_x is None else feather_x
    return np.minimum.outer(ramp(height, feather), ramp(width, across)).astype(np.float32)


def paste(frames: np.ndarray, patches: np.ndarray, crops: np.ndarray, feather: float) -> tuple[np.ndarray, np.ndarray]:
    """Blend patches [F, s, s, 3] into copies of frames at the crops with feathered weights; (frames, mask)."""
    out, mask = frames.copy(), np.zeros(frames.shape[:3], np.float32)
    for f, (x0, y0, s) in enumerate(crops):
        w = feather_weights(s, s, feather)
        region = out[f, y0 : y0 + s, x0 : x0 + s].astype(np.float32)
        out[f, y0 : y0 + s, x0 : x0 + s] = np.round(region + w[..., None] * (patches[f] - region)).astype(np.uint8)
        mask[f, y0 : y0 + s, x0 : x0 + s] = w
    return out, mask


def region_refine(
    components: Components,
    frames: np.ndarray,
    prompt: str,
    boxes: np.ndarray | None = None,
    detector: str = "probe",
    strength: float = DEFAULT_STRENGTH,
    margin: float = DEFAULT_MARGIN,
    feather: float | None = None,
    smooth: float = SMOOTH_SIGMA,
    **kwargs: Any,
) -> RegionResult:
    """Refine the subject region of uint8 frames [F, H, W, 3] (any size and length). boxes [F, 4] in pixels
    (NaN rows allowed) replace the detector. feather: px (default: FEATHER_FRACTION of the crop side). kwargs
    go to `video_to_video` (num_inference_steps, guidance_scale, seed, adapters, noise, ...)."""
    frames = np.asarray(frames)
    boxes = smooth_boxes(detect_boxes(frames, detector) if boxes is None else boxes, smooth)
    crops = crop_squares(boxes, margin, *frames.shape[1:3])
    side = int(crops[0, 2])
    clip = np.stack([frames[f, y0 : y0 + side, x0 : x0 + side] for f, (x0, y0, _) in enumerate(crops)])
    refined = refine_clip(components, clip, prompt, strength, **kwargs)
    feather = max(1.0, round(side * FEATHER_FRACTION)) if feather is None else feather
    out, mask = paste(frames, refined.astype(np.float32), crops, feather)
    return RegionResult(out, boxes, crops, mask)
