from __future__ import annotations

import re

import torch

from customvid.adapters import delta, lora, tokens
from customvid.adapters.base import Adapter, plain_name
from customvid.adapters.format import AdapterFiles
from customvid.adapters.motion.config import MotionConfig
from customvid.adapters.registry import register
from customvid.errors import CustomvidError
from customvid.models.backbones import CROSS_ATTENTION_KV, backbone_spec, temporal_layers, temporal_parameters


def _plain_names(names: list[str]) -> list[str]:
    """Parameter names as the bare model spells them (a parametrized or LoRA-wrapped layer renames its tensors)."""
    return list(dict.fromkeys(p for n in names if (p := plain_name(n)) is not None))


@register
class MotionAdapter(Adapter):
    method = "motion"
    Config = MotionConfig
    # motion-module LoRAs reach ComfyUI through AnimateDiff-Evolved's own layout, not kohya's SD1.5 keys
    kohya_export = False

    @property
    def alpha(self) -> float:
        return self.config.lora_alpha or float(self.config.lora_rank)  # default: the rank (scale 1)

    def targets(self, unet: torch.nn.Module) -> list[str]:
        """Full tuning: parameter names; LoRA: Linear/Conv layer names."""
        if self.config.lora_rank:
            layers = temporal_layers(unet)
            if backbone_spec(unet).kind == "unet_motion":
                # AnimateDiff calls these with `input=`, which a peft LoRA layer does not take; AnimateDiff's own
                # motion LoRAs leave them out too
                layers = [n for n in layers if not re.search(r"\.proj_(in|out)$", n)]
            if self.config.params == "temporal+kv":
                layers += self._kv_layers(unet)
            names = [n.replace(".base_layer", "") for n in layers if ".lora_" not in n]
            # peft cannot wrap a layer inside one it wraps: the frame-time model's proj_in holds its caption
            # attention (`proj_in.text_attn.*`); proj_in gets the LoRA as in a stock model, the attention stays
            # as it is (full tuning trains it with the rest of the temporal parameters)
            return [n for n in names if not any(n.startswith(m + ".") for m in names)]
        names = temporal_parameters(unet)
        if self.config.params == "temporal+kv":
            for layer in self._kv_layers(unet):
                module = unet.get_submodule(layer)
                base = module.get_base_layer() if hasattr(module, "get_base_layer") else module
                names += [f"{layer}.{attr}" for attr in ("weight", "bias") if getattr(base, attr, None) is not None]
        return _plain_names(names)

    @staticmethod
    def _kv_layers(unet) -> list[str]:
        # also where a subject LoRA already wraps them (then they are peft layers, not nn.Linear)
        return lora.linear_layers(unet, CROSS_ATTENTION_KV)

    def _attach(self, components) -> None:
        self._saved_tokens = None
        self._deltas: dict[str, delta.WeightedDelta] = {}
        if self.config.token:
            row = tokens.identifier_embedding(components, self.config.token, self.config.init_word)
            self._saved_tokens = tokens.add_tokens(components, {self.config.token: row[None]})
        try:
            self._targets = self.targets(components.unet)
            if self.config.lora_rank:
                lora.inject_lora(components.unet, self.name, self._targets, self.config.lora_rank, self.alpha)
            else:
                self._deltas = delta.add_deltas(components.unet, self._targets)
        except Exception:
            if self._saved_tokens is not None:
                tokens.remove_tokens(components, self._saved_tokens)
            raise
        components.unet.requires_grad_(False)  # the base stays frozen; Adapter.train switches its own tensors on

    def _own_parameters(self, components) -> list[torch.nn.Parameter]:
        if self.config.lora_rank:
            return lora.lora_parameters(components.unet, self.name)
        return [p.delta for p in self._deltas.values()]

    def _detach(self, components) -> None:
        if self.config.lora_rank:
            lora.remove_lora(components.unet, self.name)
            lora.sync_lora_weights(components)
        else:
            delta.remove_deltas(self._deltas)
        if self._saved_tokens is not None:
            tokens.remove_tokens(components, self._saved_tokens)

    def _apply_weight(self, weight: float) -> None:
        if self.config.lora_rank:
            lora.sync_lora_weights(self.components)
        else:
            delta.set_delta_scale(self._deltas, weight)

    def trainable_parameters(self) -> list[torch.nn.Parameter]:
        if self.components is None:
            raise CustomvidError(f"adapter {self.name!r} is not attached to a model")
        params = self._own_parameters(self.components)
        if self.config.token and self.config.train_token:
            params.append(tokens.token_parameter(self.components, self.config.token))
        return params

    def _state(self) -> dict[str, dict[str, torch.Tensor]]:
        state: dict = {}
        if self.config.lora_rank:
            state["lora"] = lora.lora_state_dict(self.components.unet, self.name)
            state["lora_metadata"] = lora.lora_metadata(self._targets, self.config.lora_rank, self.alpha)
        else:
            state["weights"] = delta.delta_state_dict(self._deltas)
        if self.config.token:
            state["tokens"] = {self.config.token: tokens.token_rows(self.components, self.config.token)}
        return state

    def _load_state(self, files: AdapterFiles) -> None:
        if self.config.lora_rank:
            prefix = "unet."
            state = {k[len(prefix):]: v for k, v in files.lora.items() if k.startswith(prefix)}
            lora.load_lora_state_dict(self.components.unet, self.name, state)
        else:
            delta.load_delta_state_dict(self._deltas, files.weights)
        if self.config.token:
            tokens.load_token_rows(self.components, self.config.token, files.tokens)
