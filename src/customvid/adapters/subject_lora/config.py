from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class SubjectLoraConfig:
    """CustomCrafter's plug-in subject module: LoRA on the spatial self- and cross-attention projections.

    token: the subject's identifier, a new tokenizer token whose embedding row is the class word's plus seeded
    noise of the embeddings' own spread (`tokens.identifier_embedding`: a text state of its own, near the class,
    which the LoRA learns to bind; the row stays frozen in this method and travels with the adapter).
    """

    rank: int = 8
    train_token: bool = False  # also train the identifier's embedding row (the text encoder stays frozen)
    alpha: float = 8.0
    token: str = "<sks>"
    class_word: str = "object"
    attentions: list[str] = field(default_factory=lambda: ["attn1", "attn2"])
    projections: list[str] = field(default_factory=lambda: ["q", "k", "v", "out"])
