"""Subject masks for training photos that come without one.

    from customvid.segmentation import segment
    masks = segment(images)                                      # uint8 [N, H, W, 3] -> bool [N, H, W]
    masks = segment(images, "clipseg:models/clipseg", prompt="diamond")

Methods: "border" (weight-free: background colours from the image border; see `border`), "grabcut" (OpenCV
GrabCut in a centred box), "clipseg:PATH" (a local transformers CLIPSeg folder, prompted with the class word) and
"auto", the best weight-free one as measured by `customvid bench masks` (border). An image where a method finds
nothing gets an all-True mask: it trains as if it had no mask.
"""

from __future__ import annotations

import numpy as np

from customvid.errors import CustomvidError
from customvid.segmentation.base import at_working_size, check_images, mask_iou, mask_ious
from customvid.segmentation.border import segment_border
from customvid.segmentation.grabcut import segment_grabcut

AUTO = "border"  # measured best weight-free method: `customvid bench masks`
WEIGHT_FREE = {"border": segment_border, "grabcut": segment_grabcut}  # name -> uint8 [H, W, 3] -> bool [H, W]
SEGMENTERS = ("auto", *WEIGHT_FREE, "clipseg:PATH")  # what `method` accepts

__all__ = ["AUTO", "SEGMENTERS", "WEIGHT_FREE", "check_method", "mask_iou", "mask_ious", "segment"]


def check_method(method: str) -> tuple[str, str]:
    """(name, argument) of a segmenter spec, or a one-line error (a CLI checks this before any long work;
    clipseg's folder is checked too)."""
    name, _, arg = str(method).partition(":")
    name = AUTO if name == "auto" and not arg else name
    if name == "clipseg":
        from customvid.segmentation.clipseg import check_folder

        check_folder(arg)
        return name, arg
    if name in WEIGHT_FREE and not arg:
        return name, ""
    raise CustomvidError(f"unknown segmenter {method!r}; known: {', '.join(SEGMENTERS)}")


def segment(images, method: str = "auto", prompt: str | None = None) -> np.ndarray:
    """Subject masks: uint8 [N, H, W, 3] -> bool [N, H, W] ([H, W, 3] -> [H, W]). `prompt` (the class word) is
    needed by clipseg only."""
    single = np.ndim(images) == 3
    arr = check_images(images)
    name, arg = check_method(method)
    if name == "clipseg":
        from customvid.segmentation.clipseg import segment_clipseg

        masks = segment_clipseg(arr, arg, prompt)
    else:
        masks = np.stack([at_working_size(WEIGHT_FREE[name], image) for image in arr])
    masks[~masks.any(axis=(1, 2))] = True
    return masks[0] if single else masks
