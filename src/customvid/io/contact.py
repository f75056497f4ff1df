"""Contact sheets: all frames of a clip in one grid image, for eyeballing tiny 64x64 generations."""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from customvid.errors import CustomvidError

from .video import VideoData, as_uint8_frames, write_image

__all__ = ["LABEL_HEIGHT", "PAD_VALUE", "contact_sheet", "write_contact_sheet"]

PAD_VALUE = 128  # neutral grey: does not read as part of a black or white frame
LABEL_HEIGHT = 12  # px band under each frame when labels are given (fits Pillow's default font)


def contact_sheet(
    frames: Any,
    cols: int | None = None,
    pad: int = 2,
    scale: int = 1,
    labels: Sequence[str] | None = None,
) -> np.ndarray:
    """Tile ``frames`` ([F,H,W,3], or a VideoData) row-major into one uint8 RGB image.

    Each cell is the frame upscaled ``scale``x by nearest neighbour (keeps pixels crisp), plus a
    ``LABEL_HEIGHT`` text band under it when ``labels`` (one per frame) are given. With
    ``cols`` defaulting to ceil(sqrt(F)) (and capped at F), ``rows = ceil(F / cols)`` and the sheet is
    ``rows*cell_h + (rows+1)*pad`` by ``cols*cell_w + (cols+1)*pad``; frame k's top-left pixel is at
    ``(pad + (k//cols)*(cell_h+pad), pad + (k%cols)*(cell_w+pad))``. Empty cells stay grey.
    """
    arr = as_uint8_frames(frames.frames if isinstance(frames, VideoData) else frames)
    n, h, w, _ = arr.shape
    if cols is None:
        cols = math.ceil(math.sqrt(n))
    if int(cols) < 1 or int(pad) < 0 or int(scale) < 1:
        raise CustomvidError(
            f"contact sheet needs cols >= 1, pad >= 0, scale >= 1; got cols={cols}, pad={pad}, scale={scale}"
        )
    cols, pad, scale = min(int(cols), n), int(pad), int(scale)
    if labels is not None and len(labels) != n:
        raise CustomvidError(f"got {len(labels)} labels for {n} frames; need one label per frame")
    rows = math.ceil(n / cols)
    fh, fw = h * scale, w * scale
    cell_h = fh + (LABEL_HEIGHT if labels is not None else 0)
    sheet = np.full((rows * cell_h + (rows + 1) * pad, cols * fw + (cols + 1) * pad, 3), PAD_VALUE, np.uint8)
    font = ImageFont.load_default() if labels is not None else None
    for k in range(n):
        top = pad + (k // cols) * (cell_h + pad)
        left = pad + (k % cols) * (fw + pad)
        sheet[top : top + fh, left : left + fw] = arr[k].repeat(scale, axis=0).repeat(scale, axis=1)
        if labels is not None:
            # Draw into a band of its own so long labels are clipped instead of spilling into neighbours.
            band = Image.new("RGB", (fw, LABEL_HEIGHT), (PAD_VALUE,) * 3)
            ImageDraw.Draw(band).text((1, 0), str(labels[k]), fill=(255, 255, 255), font=font)
            sheet[top + fh : top + cell_h, left : left + fw] = np.asarray(band)
    return sheet


def write_contact_sheet(path: str | os.PathLike[str], frames: Any, **kw: Any) -> Path:
    """Build :func:`contact_sheet` (``kw`` passed through) and write it atomically as an image (PNG)."""
    return write_image(path, contact_sheet(frames, **kw))
