from __future__ import annotations

from dataclasses import dataclass

PARAMETER_GROUPS = ("temporal", "temporal+kv")


@dataclass
class MotionConfig:
    """Customizing Motion in T2V's motion module (METHODS.md section 4).

    params: "temporal" = every temporal layer (UNet3D: transformer_in, temp_convs, temp_attentions; AnimateDiff: the
    motion modules), norms included; "temporal+kv" adds the spatial cross-attention K/V projections, the paper's
    choice (temporal layers alone cannot tie a motion to its word, nor learn motions that change appearance).
    lora_rank: 0 tunes those tensors fully (the paper); > 0 puts a LoRA of that rank on their Linear/Conv layers
    instead (norms then stay frozen), which is MotionDirector's temporal path and a far smaller file.
    token: the motion's new word ("a red circle doing <pll>"), one embedding row initialised from `init_word`
    plus seeded noise, trained when train_token; None: no token (the caption alone names the motion).
    """

    params: str = "temporal+kv"
    lora_rank: int = 0
    lora_alpha: float | None = None  # None: the rank (scale 1)
    token: str | None = "<pll>"
    init_word: str = "moving"
    train_token: bool = True

    def __post_init__(self):
        from customvid.errors import CustomvidError

        if self.params not in PARAMETER_GROUPS:
            known = ", ".join(PARAMETER_GROUPS)
            raise CustomvidError(f"unknown motion parameter group {self.params!r}; known: {known}")
        if self.lora_rank < 0:
            raise CustomvidError(f"lora rank must be >= 0, got {self.lora_rank}")
