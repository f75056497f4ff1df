"""CustomCrafter's subject module: spatial LoRA + a subject token, sampled with Dynamic Weighted Video Sampling."""

from customvid.adapters.subject_lora.adapter import SubjectLora
from customvid.adapters.subject_lora.config import SubjectLoraConfig

__all__ = ["SubjectLora", "SubjectLoraConfig"]
