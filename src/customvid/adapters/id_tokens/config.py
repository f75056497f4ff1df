from __future__ import annotations

from dataclasses import dataclass

from customvid.adapters.subject_lora.config import SubjectLoraConfig


@dataclass
class IdTokensConfig:
    """Extended ID tokens: `num_tokens` new rows under one prompt token ("<sks>" expands to "<sks>_0 ... <sks>_3",
    written before the class word: "a <sks> circle"); only these rows train, text encoder and UNet stay frozen.

    init_spread: the rows start from the class word's row plus seeded noise of this many embedding stds. 0 (the
    default) starts the prompt as "a circle circle circle circle circle", i.e. at the class, which the frozen model
    already draws; the rows still separate in training since each sits at another position.
    """

    token: str = "<sks>"
    class_word: str = "object"
    num_tokens: int = 4
    init_spread: float = 0.0


@dataclass
class LoraTokensConfig(SubjectLoraConfig):
    """The subject LoRA with Magic-Me's extended, trained ID tokens instead of its single frozen identifier row.
    The rows start off the class word (spread 1, as the LoRA's identifier: the class-prior clips then do not
    share the instance text)."""

    num_tokens: int = 4
    train_token: bool = True
    init_spread: float = 1.0
