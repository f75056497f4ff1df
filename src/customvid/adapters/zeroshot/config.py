from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from customvid.errors import CustomvidError

MASK_MODES = ("blended", "binary", "none")
INFERENCE_ONLY = ("reference_guidance", "box_guidance")  # how sampling uses the modules, not what they learned


@dataclass
class ZeroShotConfig:
    """DreamVideo-2's two modules (METHODS.md section 3); either may be left out."""

    reference: bool = True  # masked reference attention: the subject from one image
    motion: bool = True  # mask-guided motion module: the subject follows per-frame boxes
    # reference-attention output x (1 inside the box, mask_blend outside): "blended" (the paper, lambda_M 0.75),
    # "binary" (0 outside) or "none" (no box mask)
    mask_mode: str = "blended"
    mask_blend: float = 0.75
    # the reference image passes the frozen UNet clean, at this timestep, with the empty prompt: its features then
    # do not depend on the denoising step, so they are computed once per generation (ReferenceNet practice)
    ref_timestep: int = 0
    # with a subject mask, the reference is a square crop around the subject with this margin (x its size per
    # side) instead of the whole frame; 0: the whole frame, as given
    ref_crop: float = 0.15
    # classifier-free guidance: the unconditional branch runs without the reference, so guidance amplifies the
    # image as it does the text (IP-Adapter / AnimateAnyone practice; DreamVideo-2 does not say; training's
    # reference dropout teaches the no-reference case). False: both branches see it, and only the text is guided
    reference_guidance: bool = True
    # the same for the boxes: this share of the motion module's residuals is taken out of the unconditional branch,
    # so guidance amplifies the box condition too (0: both branches get it, diffusers' ControlNet default; 1: the
    # unconditional branch runs without boxes, which training's box dropout taught). An inference setting: 1 lifted
    # held-out mIoU 0.604 -> 0.698 with the same modules (BENCHMARKS.md)
    box_guidance: float = 1.0
    # box encoder: channels of its stride-2 convs (one per halving of the VAE's downscale)
    encoder_channels: tuple[int, ...] = (16, 32, 64)
    encoder_heads: int = 4

    def __post_init__(self) -> None:
        self.encoder_channels = tuple(int(c) for c in self.encoder_channels)
        if not (self.reference or self.motion):
            raise CustomvidError("a zero-shot adapter needs the reference attention, the motion module or both")
        if self.mask_mode not in MASK_MODES:
            raise CustomvidError(f"unknown mask mode {self.mask_mode!r}; expected one of {', '.join(MASK_MODES)}")
        if self.ref_crop < 0:
            raise CustomvidError(f"ref_crop must be >= 0, got {self.ref_crop}")
        if not 0.0 <= self.box_guidance <= 1.0:
            raise CustomvidError(f"box_guidance must be in [0, 1], got {self.box_guidance}")
        if not 0.0 <= self.mask_blend <= 1.0:
            raise CustomvidError(f"mask_blend must be in [0, 1], got {self.mask_blend}")

    def same_modules(self, other: ZeroShotConfig) -> bool:
        """Whether both describe the same trained modules (the inference-only settings may differ)."""
        keep = {f: getattr(self, f) for f in INFERENCE_ONLY}
        return dataclasses.replace(other, **keep) == self

    def outside(self) -> float | None:
        """Reference-attention weight outside the box (None: no box mask)."""
        return {"blended": self.mask_blend, "binary": 0.0, "none": None}[self.mask_mode]
