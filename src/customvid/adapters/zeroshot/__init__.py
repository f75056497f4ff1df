"""DreamVideo-2's zero-shot subject (reference attention) and box-trajectory (mask-guided motion module) adapter."""

from customvid.adapters.zeroshot.adapter import ZeroShotAdapter
from customvid.adapters.zeroshot.config import ZeroShotConfig

__all__ = ["ZeroShotAdapter", "ZeroShotConfig"]
