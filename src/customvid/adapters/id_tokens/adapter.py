from __future__ import annotations

import torch

from customvid.adapters import tokens
from customvid.adapters.base import Adapter
from customvid.adapters.format import AdapterFiles
from customvid.adapters.id_tokens.config import IdTokensConfig, LoraTokensConfig
from customvid.adapters.registry import register
from customvid.adapters.subject_lora.adapter import SubjectLora
from customvid.errors import CustomvidError


def id_rows(components, config) -> tuple[torch.Tensor, torch.Tensor]:
    """(starting rows, anchor) [num_tokens, D] of a config's ID token; the anchor is what the token reads at weight
    0: the class word's row in every position (the prompt becomes the class)."""
    if config.num_tokens < 1:
        raise CustomvidError(f"num_tokens must be >= 1, got {config.num_tokens}")
    rows = tokens.identifier_embedding(components, config.token, config.class_word, config.init_spread,
                                       rows=config.num_tokens)
    row = tokens.word_embedding(components.tokenizer, components.text_encoder, config.class_word)
    return rows, row.expand(config.num_tokens, -1).clone()


@register
class IdTokens(Adapter):
    """Textual inversion of N rows. Its weight blends the rows towards the class word's (0: the class prompt), so
    it follows the same schedules as the LoRA methods."""

    method = "tokens"
    Config = IdTokensConfig

    def _attach(self, components) -> None:
        rows, self._anchor = id_rows(components, self.config)
        self._saved_tokens = tokens.add_tokens(components, {self.config.token: rows})
        # only the new rows may learn (Adapter.train switches them on): the model itself stays as it is
        components.unet.requires_grad_(False)
        components.text_encoder.requires_grad_(False)

    def _detach(self, components) -> None:
        tokens.remove_tokens(components, self._saved_tokens)

    def _apply_weight(self, weight: float) -> None:
        tokens.set_token_weight(self.components, self.config.token, self._anchor, weight)

    def trainable_parameters(self) -> list[torch.nn.Parameter]:
        if self.components is None:
            raise CustomvidError(f"adapter {self.name!r} is not attached to a model")
        return [tokens.token_parameter(self.components, self.config.token)]

    def _state(self) -> dict[str, dict[str, torch.Tensor]]:
        return {"tokens": {self.config.token: tokens.token_rows(self.components, self.config.token)}}

    def _load_state(self, files: AdapterFiles) -> None:
        tokens.load_token_rows(self.components, self.config.token, files.tokens)


@register
class LoraTokens(SubjectLora):
    method = "lora+tokens"
    Config = LoraTokensConfig

    def __init__(self, config: LoraTokensConfig, name: str | None = None):
        super().__init__(config, name=name or "lora_tokens")  # peft adapter names must be identifiers

    def _token_rows(self, components) -> torch.Tensor:
        rows, self._anchor = id_rows(components, self.config)
        return rows

    def _apply_weight(self, weight: float) -> None:
        super()._apply_weight(weight)
        tokens.set_token_weight(self.components, self.config.token, self._anchor, weight)
