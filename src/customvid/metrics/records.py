"""What an evaluation looks at: one generated video, its prompt and the conditions it was generated from."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class EvalRecord:
    """One video to score.

    frames: uint8 [F, H, W, 3].
    reference_images: uint8 [h, w, 3] arrays (the subject images it should show); may be empty.
    target_boxes: float [F, 4] (x1, y1, x2, y2 in pixels of the frame) or None; a NaN row means "no target in
        this frame" and that frame is left out of every box metric.
    subject: the world attribute record the video should show (`ClipSpec.to_dict()`: shape, colour, texture,
        background, motion, ...) or None.
    id: a name for reports (the manifest uses its `id`, else the video path).
    source: where the video came from (the manifest's `video` string), for reports.
    fps: frames per second when known (dynamic degree subsamples to ~8 fps as VBench does).
    """

    frames: np.ndarray
    prompt: str = ""
    reference_images: list[np.ndarray] = field(default_factory=list)
    target_boxes: np.ndarray | None = None
    subject: dict | None = None
    id: str = ""
    fps: float | None = None
    source: str | None = None

    def __post_init__(self):
        frames = np.asarray(self.frames)
        if frames.ndim != 4 or frames.shape[-1] != 3 or frames.shape[0] < 1:
            raise ValueError(f"frames must be uint8 [F, H, W, 3] with F >= 1, got shape {frames.shape}")
        if frames.dtype != np.uint8:
            raise ValueError(f"frames must be uint8, got {frames.dtype}")
        self.frames = frames
        refs = []
        for i, img in enumerate(self.reference_images):
            img = np.asarray(img)
            if img.ndim != 3 or img.shape[-1] != 3 or img.dtype != np.uint8:
                raise ValueError(f"reference image {i} must be uint8 [H, W, 3], got {img.dtype} {img.shape}")
            refs.append(img)
        self.reference_images = refs
        if self.target_boxes is not None:
            boxes = np.asarray(self.target_boxes, dtype=np.float64)
            if boxes.shape != (self.num_frames, 4):
                raise ValueError(
                    f"target_boxes must be [F, 4] with one box per frame ({self.num_frames} frames), "
                    f"got shape {boxes.shape}"
                )
            self.target_boxes = boxes

    @property
    def num_frames(self) -> int:
        return int(self.frames.shape[0])

    @property
    def height(self) -> int:
        return int(self.frames.shape[1])

    @property
    def width(self) -> int:
        return int(self.frames.shape[2])
