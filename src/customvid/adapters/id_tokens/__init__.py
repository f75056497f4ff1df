"""Magic-Me's ID module: extended textual inversion ("tokens") and the same tokens beside a spatial LoRA
("lora+tokens")."""

from customvid.adapters.id_tokens.adapter import IdTokens, LoraTokens
from customvid.adapters.id_tokens.config import IdTokensConfig, LoraTokensConfig

__all__ = ["IdTokens", "IdTokensConfig", "LoraTokens", "LoraTokensConfig"]
