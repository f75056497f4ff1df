from __future__ import annotations

import torch

from customvid.adapters import lora, tokens
from customvid.adapters.base import Adapter
from customvid.adapters.format import AdapterFiles
from customvid.adapters.registry import register
from customvid.adapters.subject_lora.config import SubjectLoraConfig
from customvid.errors import CustomvidError
from customvid.models.backbones import backbone_spec, spatial_attention_regex


@register
class SubjectLora(Adapter):
    method = "lora"
    Config = SubjectLoraConfig
    # CustomCrafter's Dynamic Weighted Video Sampling: 0.4 while layout and motion form, then 0.8
    default_schedule = "dws"

    def targets(self, unet: torch.nn.Module) -> list[str]:
        backbone_spec(unet)
        return lora.linear_layers(unet, spatial_attention_regex(self.config.attentions, self.config.projections))

    def _attach(self, components) -> None:
        self._saved_tokens = None
        if self.config.token:
            self._saved_tokens = tokens.add_tokens(components, {self.config.token: self._token_rows(components)})
        self._targets = self.targets(components.unet)  # before injection wraps the Linear layers
        try:
            lora.inject_lora(components.unet, self.name, self._targets, self.config.rank, self.config.alpha)
        except Exception:
            if self._saved_tokens is not None:
                tokens.remove_tokens(components, self._saved_tokens)
            raise
        components.unet.requires_grad_(False)

    def _token_rows(self, components) -> torch.Tensor:
        return tokens.identifier_embedding(components, self.config.token, self.config.class_word)

    def _detach(self, components) -> None:
        lora.remove_lora(components.unet, self.name)
        if self._saved_tokens is not None:
            tokens.remove_tokens(components, self._saved_tokens)
        lora.sync_lora_weights(components)

    def _apply_weight(self, weight: float) -> None:
        lora.sync_lora_weights(self.components)  # the token row's requires_grad is Adapter.train's alone

    def trainable_parameters(self) -> list[torch.nn.Parameter]:
        if self.components is None:
            raise CustomvidError(f"adapter {self.name!r} is not attached to a model")
        params = lora.lora_parameters(self.components.unet, self.name)
        if self.config.token and self.config.train_token:
            params.append(tokens.token_parameter(self.components, self.config.token))
        return params

    def _state(self) -> dict[str, dict[str, torch.Tensor]]:
        unet = self.components.unet
        state = {
            "lora": lora.lora_state_dict(unet, self.name),
            "lora_metadata": lora.lora_metadata(self._targets, self.config.rank, self.config.alpha),
        }
        if self.config.token:
            state["tokens"] = {self.config.token: tokens.token_rows(self.components, self.config.token)}
        return state

    def _load_state(self, files: AdapterFiles) -> None:
        prefix = "unet."
        state = {k[len(prefix):]: v for k, v in files.lora.items() if k.startswith(prefix)}
        lora.load_lora_state_dict(self.components.unet, self.name, state)
        if self.config.token:
            tokens.load_token_rows(self.components, self.config.token, files.tokens)
