"""Per-frame box files: one subject box per frame, given outright or as keyframes, in pixels or normalized.

    {"boxes": [[x1, y1, x2, y2], ...], "units": "pixels"}            one box per frame
    {"keyframes": {"0": [x1, y1, x2, y2], "7": [...]}, "units": "normalized"}

Keyframes are interpolated linearly between frames and held before the first and after the last. "pixels" are the
video's pixels (x2, y2 exclusive, like the renderer's boxes); "normalized" are fractions of its width and height.
Every problem is a one-line CustomvidError naming the file.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from customvid.errors import CustomvidError

__all__ = ["BOX_UNITS", "box_masks", "parse_boxes", "read_boxes"]

BOX_UNITS = ("pixels", "normalized")


def read_boxes(path: str | os.PathLike[str], num_frames: int, width: int, height: int) -> np.ndarray:
    """The boxes file at `path` for a video of num_frames x height x width -> float [F, 4] pixels."""
    p = Path(path)
    try:
        obj = json.loads(p.read_text(encoding="utf-8"))
    except OSError as err:
        raise CustomvidError(f"cannot read boxes file {p}: {err.strerror or err}") from err
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise CustomvidError(f"{p}: not valid JSON ({err})") from err
    return parse_boxes(obj, num_frames, width, height, source=str(p))


def parse_boxes(obj: Any, num_frames: int, width: int, height: int, source: str = "boxes") -> np.ndarray:
    """A parsed boxes object (see the module doc) -> float [num_frames, 4] in pixels, validated."""

    def fail(reason: str) -> CustomvidError:
        return CustomvidError(f"{source}: {reason}")

    if not isinstance(obj, dict):
        raise fail('expected a JSON object with "boxes" or "keyframes" and "units"')
    units = obj.get("units")
    if units not in BOX_UNITS:
        raise fail(f"unknown units {units!r}; expected one of {', '.join(BOX_UNITS)}")
    if ("boxes" in obj) == ("keyframes" in obj):
        raise fail('expected exactly one of "boxes" (one per frame) and "keyframes"')
    scale = np.array([width, height, width, height], float) if units == "normalized" else np.ones(4)
    limit = np.array([width, height]) if units == "pixels" else np.ones(2)

    def box(value: Any, where: str) -> np.ndarray:
        if not (isinstance(value, list) and len(value) == 4 and all(_is_number(v) for v in value)):
            raise fail(f"{where}: expected [x1, y1, x2, y2] numbers, got {json.dumps(value)}")
        b = np.array(value, float)
        if b[2] <= b[0] or b[3] <= b[1]:
            raise fail(f"{where}: empty box {value} (needs x2 > x1 and y2 > y1)")
        if (b[:2] < 0).any() or (b[2:] > limit).any():
            raise fail(f"{where}: box {value} lies outside the {_frame(units, width, height)} frame")
        return b

    if "boxes" in obj:
        items = obj["boxes"]
        if not isinstance(items, list):
            raise fail('"boxes" must be a list of [x1, y1, x2, y2]')
        if len(items) != num_frames:
            raise fail(f"{len(items)} boxes for a video of {num_frames} frames")
        return np.stack([box(v, f"frame {i}") for i, v in enumerate(items)]) * scale
    keys = obj["keyframes"]
    if not isinstance(keys, dict) or not keys:
        raise fail('"keyframes" must be a non-empty object {"frame index": [x1, y1, x2, y2]}')
    frames, boxes = [], []
    for key, value in keys.items():
        if not (key.isdigit() and int(key) < num_frames):
            raise fail(f"keyframe {key!r} is not a frame index of a {num_frames}-frame video")
        if int(key) in frames:
            raise fail(f"keyframe {key!r} repeats frame {int(key)}")
        frames.append(int(key))
        boxes.append(box(value, f"keyframe {key}"))
    order = np.argsort(frames)
    known, values = np.array(frames)[order], np.stack(boxes)[order]
    t = np.arange(num_frames)
    return np.stack([np.interp(t, known, values[:, k]) for k in range(4)], axis=1) * scale


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and np.isfinite(v)


def _frame(units: str, width: int, height: int) -> str:
    return f"{width}x{height} px" if units == "pixels" else "[0, 1] normalized"


def box_masks(boxes: np.ndarray, video_size: tuple[int, int], grid: tuple[int, int] | None = None) -> np.ndarray:
    """float32 [F, h, w] masks of pixel boxes [F, 4] of a video_size = (H, W) video, drawn on a grid (h, w)
    (default: the video's pixels). Each cell holds the fraction of its area inside the box: 1 inside, 0 outside,
    partial on the border (NaN boxes: empty), so a box keeps its exact extent on a coarser grid (a latent or an
    attention map)."""
    boxes = np.asarray(boxes, np.float64)
    if boxes.ndim != 2 or boxes.shape[1] != 4:
        raise CustomvidError(f"boxes must have shape [frames, 4], got {list(boxes.shape)}")
    boxes = np.nan_to_num(boxes)  # a frame without its subject (NaN box) gets an empty mask
    (height, width), (h, w) = video_size, grid or video_size
    sx, sy = w / width, h / height
    cols = np.stack([_cover(b[0] * sx, b[2] * sx, w) for b in boxes])
    rows = np.stack([_cover(b[1] * sy, b[3] * sy, h) for b in boxes])
    return (rows[:, :, None] * cols[:, None, :]).astype(np.float32)


def _cover(lo: float, hi: float, n: int) -> np.ndarray:
    """Fraction of each unit cell [i, i + 1) of an n-cell axis that lies in [lo, hi)."""
    i = np.arange(n)
    return np.clip(np.minimum(i + 1, hi) - np.maximum(i, lo), 0, 1)
