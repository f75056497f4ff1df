"""Video-to-video refinement (Magic-Me's VCD stages): partial re-denoising of a whole clip, of the subject's
region at the model's full resolution (Face VCD), and of overlapping tiles of a x2 upscale (Tiled VCD)."""

from customvid.refine.region import (
    DETECTORS,
    RegionResult,
    crop_squares,
    detect_boxes,
    feather_weights,
    haar_boxes,
    paste,
    region_refine,
    smooth_boxes,
)
from customvid.refine.tiled import blend_tiles, tiled_upscale
from customvid.refine.v2v import refine_clip, resize_frames, video_to_video, windows

__all__ = [
    "DETECTORS",
    "RegionResult",
    "blend_tiles",
    "crop_squares",
    "detect_boxes",
    "feather_weights",
    "haar_boxes",
    "paste",
    "refine_clip",
    "region_refine",
    "resize_frames",
    "smooth_boxes",
    "tiled_upscale",
    "video_to_video",
    "windows",
]
