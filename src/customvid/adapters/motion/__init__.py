"""Customizing Motion in T2V: temporal layers (+ cross-attention K/V), fully tuned or as LoRA, and a motion token."""

from customvid.adapters.motion.adapter import MotionAdapter
from customvid.adapters.motion.config import MotionConfig

__all__ = ["MotionAdapter", "MotionConfig"]
