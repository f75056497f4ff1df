"""LoRA on named layers of either video backbone, several adapters side by side, each with its own weight.

`UNet3DConditionModel` has no diffusers adapter mixin, so peft injects into it directly; `UNetMotionModel`
(AnimateDiff) goes through diffusers' own PEFT support (`add_adapter` / `set_adapters` / `delete_adapters`), the
same code path `AnimateDiffPipeline.load_lora_weights` uses. Both end up with peft `LoraLayer`s, so the tensors
and their names are the same either way.
"""

from __future__ import annotations

import torch
from diffusers.utils import recurse_remove_peft_layers
from peft import LoraConfig, get_peft_model_state_dict, inject_adapter_in_model, set_peft_model_state_dict
from peft.tuners.tuners_utils import BaseTunerLayer

from customvid.errors import CustomvidError
from customvid.models.backbones import backbone_spec, find_modules


def _tuner_layers(unet: torch.nn.Module) -> list[BaseTunerLayer]:
    return [m for m in unet.modules() if isinstance(m, BaseTunerLayer)]


def adapter_names(unet: torch.nn.Module) -> list[str]:
    names: list[str] = []
    for layer in _tuner_layers(unet):
        for name in getattr(layer, "lora_A", {}):
            if name not in names:
                names.append(name)
    return names


def linear_layers(unet: torch.nn.Module, pattern: str) -> list[str]:
    """Names matching `pattern` of Linear layers, also when another LoRA already wraps them."""
    names = []
    for name in find_modules(unet, pattern):
        module = unet.get_submodule(name)
        if isinstance(module, BaseTunerLayer):
            module = module.get_base_layer()
        if isinstance(module, torch.nn.Linear):
            names.append(name)
    return names


def lora_config(targets: list[str], rank: int, alpha: float) -> LoraConfig:
    # full module names, matched exactly (a list in peft matches name suffixes; anchored names make it exact)
    return LoraConfig(r=rank, lora_alpha=alpha, target_modules=targets, init_lora_weights=True, lora_dropout=0.0)


def inject_lora(unet: torch.nn.Module, name: str, targets: list[str], rank: int, alpha: float) -> None:
    """Add LoRA `name` (B = 0: the model computes exactly what it did) on the `targets` modules; which adapters
    are active at what weight is set afterwards by `sync_lora_weights` (Adapter.attach does)."""
    if not targets:
        raise CustomvidError("a LoRA needs at least one target layer")
    if name in adapter_names(unet):
        raise CustomvidError(f"an adapter named {name!r} is already loaded")
    missing = sorted(set(targets) - {n for n, _ in unet.named_modules()})
    if missing:
        raise CustomvidError(f"this model has no layer {missing[0]!r} (and {len(missing) - 1} more) for the LoRA")
    config = lora_config(targets, rank, alpha)
    if backbone_spec(unet).kind == "unet_motion":
        unet.add_adapter(config, adapter_name=name)
    else:
        inject_adapter_in_model(config, unet, adapter_name=name)


def set_lora_weights(unet: torch.nn.Module, weights: dict[str, float]) -> None:
    """Activate exactly the adapters in `weights`, each scaled by its weight (W = W0 + w * alpha/r * B A)."""
    if backbone_spec(unet).kind == "unet_motion":
        if weights:
            unet.set_adapters(list(weights), [float(w) for w in weights.values()])
        return
    names = list(weights)
    for layer in _tuner_layers(unet):
        present = [n for n in names if n in layer.lora_A]
        layer.set_adapter(present)  # peft: also sets requires_grad of the active adapters; caller re-freezes
        for n in present:
            layer.set_scale(n, float(weights[n]))


def remove_lora(unet: torch.nn.Module, name: str) -> None:
    """Delete LoRA `name`; with none left the wrapped layers compute exactly the base layer."""
    if backbone_spec(unet).kind == "unet_motion":
        unet.delete_adapters([name])
    else:
        for layer in _tuner_layers(unet):
            if name in getattr(layer, "lora_A", {}):
                layer.delete_adapter(name)
    if not adapter_names(unet):  # the last one: put the plain layers back (same weight names as before)
        recurse_remove_peft_layers(unet)
        if hasattr(unet, "peft_config"):
            del unet.peft_config
        if hasattr(unet, "_hf_peft_config_loaded"):
            unet._hf_peft_config_loaded = False


def lora_state_dict(unet: torch.nn.Module, name: str) -> dict[str, torch.Tensor]:
    """Tensors of LoRA `name`, keyed `<module>.lora_A.weight` (no adapter name), contiguous copies."""
    state = get_peft_model_state_dict(unet, adapter_name=name)
    return {k: v.detach().clone().contiguous() for k, v in state.items()}


def load_lora_state_dict(unet: torch.nn.Module, name: str, state: dict[str, torch.Tensor]) -> None:
    expected = set(lora_state_dict(unet, name))
    got = set(state)
    if got != expected:
        odd = sorted(got ^ expected)
        raise CustomvidError(
            f"LoRA tensors do not match this model's layers: {len(odd)} differ (e.g. {odd[0]!r})"
        )
    try:
        result = set_peft_model_state_dict(unet, state, adapter_name=name)
    except RuntimeError as err:  # shape mismatch: same names, other widths
        raise CustomvidError(f"LoRA tensors do not fit this model: {str(err).splitlines()[-1].strip()}") from err
    if getattr(result, "unexpected_keys", None):
        raise CustomvidError(f"LoRA tensors not used by this model: {result.unexpected_keys[0]!r}")


def lora_parameters(unet: torch.nn.Module, name: str) -> list[torch.nn.Parameter]:
    params = []
    for layer in _tuner_layers(unet):
        for attr in ("lora_A", "lora_B"):
            if name in getattr(layer, attr, {}):
                params.extend(getattr(layer, attr)[name].parameters())
    return params


def sync_lora_weights(components) -> None:
    """Set every attached LoRA adapter's current weight on the UNet, and requires_grad on the ones training
    only (peft's set_adapter switches grads on for whatever it activates)."""
    unet = components.unet
    present = adapter_names(unet)
    attached = [a for a in components.adapters if a.name in present]
    set_lora_weights(unet, {a.name: a.weight for a in attached})
    for p in [q for name in present for q in lora_parameters(unet, name)]:
        p.requires_grad_(False)
    for a in attached:
        if a.training:
            for p in lora_parameters(unet, a.name):
                p.requires_grad_(True)


def lora_metadata(targets: list[str], rank: int, alpha: float) -> dict:
    """The LoraConfig as diffusers writes it into a LoRA file's header (sets as sorted lists)."""
    config = lora_config(targets, rank, alpha).to_dict()
    return {k: sorted(v) if isinstance(v, set) else v for k, v in config.items()}
