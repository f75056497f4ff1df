"""What each video backbone calls its layers, and how it is called.

Adapters target layers by these names (METHODS.md section 0). The regexes are full-name patterns, usable as
`re.fullmatch` against `named_modules()` names and directly as a PEFT ``target_modules`` string (PEFT
full-matches a string pattern). Spatial layers have the same names in both backbones; temporal layers differ:

- `UNet3DConditionModel` (ModelScope/ZeroScope): ``transformer_in``, ``*.temp_attentions.N``,
  ``*.temp_convs.N`` (in a temporal transformer ``attn2`` is a second self-attention, not cross-attention);
- `UNetMotionModel` (AnimateDiff): ``*.motion_modules.N`` -- exactly the parameters of the `MotionAdapter`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from customvid.errors import CustomvidError

# A spatial transformer block: the `attentions` list of a down/up/mid block ("temp_attentions" does not match
# because the block index must be followed directly by ".attentions").
SPATIAL_BLOCK = r"(down_blocks\.\d+|up_blocks\.\d+|mid_block)\.attentions\.\d+\.transformer_blocks\.\d+"
# Spatial cross-attention K/V, verbatim from METHODS.md section 0.
CROSS_ATTENTION_KV = SPATIAL_BLOCK + r"\.attn2\.to_(k|v)"
PROJECTIONS = {"q": "to_q", "k": "to_k", "v": "to_v", "out": r"to_out\.0"}
_BLOCK = r"(down_blocks\.\d+|up_blocks\.\d+|mid_block)"
# The Conv3d layers of UNet3D's temporal convs. METHODS.md writes `conv{1..4}.2`, but in diffusers conv2-conv4
# are Sequential(GroupNorm, SiLU, Dropout, Conv3d), so their conv sits at index 3.
UNET3D_TEMPORAL_CONVS = rf"{_BLOCK}\.temp_convs\.\d+\.conv(1\.2|[234]\.3)"
# Leaf layer types that carry the weights of temporal layers (LoRA targets); norms are listed by parameters.
WEIGHT_LAYERS = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)


@dataclass(frozen=True)
class BackboneSpec:
    kind: str
    temporal_roots: str  # regex of the top-level temporal submodules
    text_per_frame: (
        bool  # the UNet wants encoder states repeated per frame ([B*F, L, D]) instead of [B, L, D]
    )


BACKBONES = {
    "unet3d": BackboneSpec(
        kind="unet3d",
        temporal_roots=rf"transformer_in|{_BLOCK}\.(temp_attentions|temp_convs)\.\d+",
        text_per_frame=False,  # UNet3DConditionModel repeat_interleaves the text states itself
    ),
    "unet_motion": BackboneSpec(
        kind="unet_motion",
        temporal_roots=rf"{_BLOCK}\.motion_modules\.\d+",
        text_per_frame=True,  # UNetMotionModel does not (AnimateDiffPipeline repeats them before the call)
    ),
}
KIND_OF_CLASS = {  # UNet class name -> backbone kind
    "UNet3DConditionModel": "unet3d",
    "UNetMotionModel": "unet_motion",
    "TextTemporalUNet3DConditionModel": "unet3d",  # customvid.models.temporal_text: same layers, plus text in time
    "FrameTimeUNet3DConditionModel": "unet3d",  # the same, plus the frame index in the time embedding
}


def backbone_spec(unet_or_kind: nn.Module | str) -> BackboneSpec:
    kind = (
        unet_or_kind if isinstance(unet_or_kind, str) else KIND_OF_CLASS.get(type(unet_or_kind).__name__, "")
    )
    if kind not in BACKBONES:
        name = unet_or_kind if isinstance(unet_or_kind, str) else type(unet_or_kind).__name__
        raise CustomvidError(f"unsupported video backbone {name!r}; supported: {sorted(KIND_OF_CLASS)}")
    return BACKBONES[kind]


def spatial_attention_regex(
    attentions: Iterable[str] = ("attn1", "attn2"), projections: Iterable[str] = ("q", "k", "v", "out")
) -> str:
    """Regex of spatial self-/cross-attention projections; `projections` are keys of PROJECTIONS."""
    attn = "|".join(attentions)
    try:
        proj = "|".join(PROJECTIONS[p] for p in projections)
    except KeyError as err:
        raise CustomvidError(
            f"unknown projection {err.args[0]!r}; expected some of {sorted(PROJECTIONS)}"
        ) from None
    return rf"{SPATIAL_BLOCK}\.({attn})\.({proj})"


def find_modules(model: nn.Module, pattern: str, types: tuple[type, ...] | None = None) -> list[str]:
    """Names of modules whose full name matches `pattern` (and that are instances of `types`, if given)."""
    regex = re.compile(pattern)
    return [
        name
        for name, module in model.named_modules()
        if regex.fullmatch(name) and (types is None or isinstance(module, types))
    ]


def spatial_attention_layers(
    unet: nn.Module,
    attentions: Iterable[str] = ("attn1", "attn2"),
    projections: Iterable[str] = ("q", "k", "v", "out"),
) -> list[str]:
    """Linear projections of the spatial transformers (CustomCrafter's subject LoRA targets)."""
    backbone_spec(unet)
    return find_modules(unet, spatial_attention_regex(attentions, projections), (nn.Linear,))


def cross_attention_kv_layers(unet: nn.Module) -> list[str]:
    """Spatial cross-attention K and V projections: the only layers that read the text."""
    backbone_spec(unet)
    return find_modules(unet, CROSS_ATTENTION_KV, (nn.Linear,))


def temporal_roots(unet: nn.Module) -> list[str]:
    """Top-level temporal submodules (everything that mixes information across frames)."""
    return find_modules(unet, backbone_spec(unet).temporal_roots)


def _under(name: str, roots: list[str]) -> bool:
    return any(name == root or name.startswith(root + ".") for root in roots)


def temporal_layers(unet: nn.Module) -> list[str]:
    """Linear/conv layers inside the temporal submodules (LoRA-able temporal weights)."""
    roots = temporal_roots(unet)
    return [
        name
        for name, module in unet.named_modules()
        if isinstance(module, WEIGHT_LAYERS) and _under(name, roots)
    ]


def temporal_parameters(unet: nn.Module) -> list[str]:
    """Names of all parameters (norms included) of the temporal submodules: what motion tuning trains."""
    roots = temporal_roots(unet)
    return [name for name, _ in unet.named_parameters() if _under(name, roots)]


def unet_forward(
    unet: nn.Module,
    sample: torch.Tensor,
    timestep: torch.Tensor | int,
    text_states: torch.Tensor,
    **kwargs: Any,
) -> torch.Tensor:
    """Noise/v prediction for `sample` [B, C, F, H, W] (both backbones take this layout) and text [B, L, D].

    The one place that knows each backbone's calling convention; extra kwargs (cross_attention_kwargs,
    down_block_additional_residuals, ...) pass through.
    """
    if backbone_spec(unet).text_per_frame:
        text_states = text_states.repeat_interleave(sample.shape[2], dim=0)
    return unet(sample, timestep, encoder_hidden_states=text_states, return_dict=False, **kwargs)[0]
