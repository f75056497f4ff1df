"""`UNet3DConditionModel` whose temporal transformers also read the caption.

Why: in the stock model the caption reaches only the spatial cross-attention, which sees one frame at a time, and
the temporal layers see no text and no frame index. Measured on the shipped model (BENCHMARKS.md, "motion
direction"): the v-loss of a clip is the same to 4 digits whether its caption says "left" or "right", so nothing
in training ever rewarded reading the direction. Here each temporal transformer gets, right after its `proj_in`,
a residual cross-attention from every (pixel, frame) token to the caption, whose queries carry a sinusoidal frame
index: "where is the subject at frame f" becomes a direct function of (text, f). The output projection starts at
zero, so a stock model converted with `from_unet3d` computes exactly what it did.

Weight names of the stock model are kept (the wrapper is a subclass of the `proj_in` Linear); the new tensors sit
under `<temporal transformer>.proj_in.text_attn.`. They are saved under a diffusers *variant* file name
(`diffusion_pytorch_model.text_temporal.safetensors`) so that a stock `UNet3DConditionModel.from_pretrained` on the
folder fails loudly (no default weights file) instead of silently dropping the text path.

`FrameTimeUNet3DConditionModel` adds, on top, the frame index to the *spatial* path: a sinusoidal frame embedding
through one zero-initialised Linear (`frame_time`) is added to the time embedding that every ResNet block reads
(inside its `time_emb_proj`, same weight names). Why: the stock UNet3D is time-reversal equivariant to 2 % at
t = 999 (BENCHMARKS.md, diagnosis 3) -- its spatial layers draw each frame without knowing which one it is -- so
from pure noise it cannot place the subject left in frame 0 and right in frame 7 for "right" only.
"""

from __future__ import annotations

import inspect
import math
import re
from typing import Any

import torch
from diffusers import UNet3DConditionModel
from diffusers.models.attention_processor import Attention
from diffusers.models.resnet import ResnetBlock2D
from torch import nn

from customvid.errors import CustomvidError

VARIANT = "text_temporal"
TEMPORAL_TRANSFORMERS = r"transformer_in|(down_blocks\.\d+|up_blocks\.\d+|mid_block)\.temp_attentions\.\d+"


def frame_embedding(num_frames: int, dim: int, device=None, dtype=None) -> torch.Tensor:
    """Fixed sinusoidal embedding [F, dim] of the frame index (no learned rows, so any frame count works)."""
    pos = torch.arange(num_frames, device=device, dtype=torch.float32)[:, None]
    freq = torch.exp(torch.arange(0, dim, 2, device=device, dtype=torch.float32) * (-math.log(10000.0) / dim))
    emb = torch.zeros(num_frames, dim, device=device)
    emb[:, 0::2] = torch.sin(pos * freq)
    emb[:, 1::2] = torch.cos(pos * freq[: dim // 2])
    return emb.to(dtype)


class FrameTextAttention(nn.Module):
    """Residual cross-attention from frame-indexed tokens [B*H*W, F, C] to the caption states [B, L, D]."""

    def __init__(self, dim: int, text_dim: int):
        super().__init__()
        heads = max(1, dim // 64)
        self.norm = nn.LayerNorm(dim)
        self.attn = Attention(query_dim=dim, cross_attention_dim=text_dim, heads=heads, dim_head=dim // heads)
        nn.init.zeros_(self.attn.to_out[0].weight)  # starts as the identity: the converted model is unchanged
        nn.init.zeros_(self.attn.to_out[0].bias)

    def forward(self, hidden: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
        bhw, frames, dim = hidden.shape
        batch = text.shape[0]
        if bhw % batch:
            raise CustomvidError(f"temporal tokens {bhw} are not a multiple of the text batch {batch}")
        query = self.norm(hidden) + frame_embedding(frames, dim, hidden.device, hidden.dtype)
        # all pixels and frames of one clip attend to that clip's caption in one call ([B, HW*F, C])
        out = self.attn(query.reshape(batch, -1, dim), encoder_hidden_states=text)
        return hidden + out.reshape(bhw, frames, dim)


class _TextContext:
    """The caption states of the current forward call, shared by the UNet and its temporal wrappers."""

    text: torch.Tensor | None = None
    frame_temb: torch.Tensor | None = None  # [F, D] frame rows added to the time embedding (FrameTime model)


class _ContextLinear(nn.Linear):
    """A copy of `linear` (same weights, same names) that can read the UNet's per-call context."""

    def __init__(self, linear: nn.Linear, context: _TextContext):
        super().__init__(linear.in_features, linear.out_features, bias=linear.bias is not None)
        self.load_state_dict(linear.state_dict())
        self.to(linear.weight.device, linear.weight.dtype)
        self.context = context


class TextProjIn(_ContextLinear):
    """A temporal transformer's `proj_in` followed by `FrameTextAttention` (same weight names as the Linear)."""

    def __init__(self, linear: nn.Linear, text_dim: int, context: _TextContext):
        super().__init__(linear, context)
        self.text_attn = FrameTextAttention(linear.out_features, text_dim).to(linear.weight.device)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        hidden = super().forward(x)
        if self.context.text is None:
            raise CustomvidError("a text-temporal layer ran outside TextTemporalUNet3DConditionModel.forward")
        return self.text_attn(hidden, self.context.text.to(hidden.dtype))


class FrameTimeProj(_ContextLinear):
    """A ResNet block's `time_emb_proj` whose input [B*F, D] also gets its frame's row (same weight names)."""

    def forward(self, temb: torch.Tensor) -> torch.Tensor:
        rows = self.context.frame_temb
        if rows is None:
            raise CustomvidError("a frame-time layer ran outside FrameTimeUNet3DConditionModel.forward")
        # the UNet repeats the time embedding per frame clip-major (row b * F + f), as `repeat` lays the rows out
        return super().forward(temb + rows.repeat(len(temb) // len(rows), 1).to(temb.dtype))


class TextTemporalUNet3DConditionModel(UNet3DConditionModel):
    """Same config and call as `UNet3DConditionModel`, plus caption cross-attention in every temporal transformer."""

    NEW_TENSORS = (".text_attn.",)  # name parts of the tensors a stock model lacks

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._text_context = _TextContext()
        text_dim = self.config.cross_attention_dim
        pattern = re.compile(TEMPORAL_TRANSFORMERS)
        for name, module in list(self.named_modules()):
            if pattern.fullmatch(name):
                module.proj_in = TextProjIn(module.proj_in, text_dim, self._text_context)

    # diffusers reads the config keys from __init__'s signature: keep the stock one
    __init__.__signature__ = inspect.signature(UNet3DConditionModel.__init__)

    def forward(self, sample, timestep, encoder_hidden_states, *args, **kwargs):
        self._text_context.text = encoder_hidden_states  # [B, L, D], before the UNet repeats it per frame
        try:
            return super().forward(sample, timestep, encoder_hidden_states, *args, **kwargs)
        finally:
            self._text_context.text = None

    def text_temporal_parameters(self) -> list[nn.Parameter]:
        """The new (zero-initialised) parameters, which train at their own rate."""
        return [p for n, p in self.named_parameters() if any(k in n for k in self.NEW_TENSORS)]

    @classmethod
    def from_unet3d(cls, unet: UNet3DConditionModel) -> TextTemporalUNet3DConditionModel:
        """The stock model with the (zero-output) text path added: computes exactly what `unet` computes."""
        model = cls.from_config(unet.config)
        missing, unexpected = model.load_state_dict(unet.state_dict(), strict=False)
        bad = [k for k in missing if not any(n in k for n in cls.NEW_TENSORS)] + list(unexpected)
        if bad:
            raise CustomvidError(f"cannot convert the UNet: {len(bad)} tensors do not match (e.g. {bad[0]})")
        model.to(unet.device)
        if model.dtype != unet.dtype:
            model.to(unet.dtype)
        return model.train(unet.training)

    def save_pretrained(self, save_directory, *args: Any, **kwargs: Any):
        kwargs.setdefault("variant", VARIANT)
        return super().save_pretrained(save_directory, *args, **kwargs)

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *args: Any, **kwargs: Any):
        kwargs.setdefault("variant", VARIANT)
        return super().from_pretrained(pretrained_model_name_or_path, *args, **kwargs)


class FrameTimeUNet3DConditionModel(TextTemporalUNet3DConditionModel):
    """The text-temporal model plus the frame index in every ResNet block's time embedding (see the module doc)."""

    NEW_TENSORS = (".text_attn.", "frame_time.")

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        dim = self.time_embedding.linear_2.out_features
        self.frame_time = nn.Linear(dim, dim)
        nn.init.zeros_(self.frame_time.weight)  # starts adding nothing: a converted model is unchanged
        nn.init.zeros_(self.frame_time.bias)
        for module in list(self.modules()):
            if isinstance(module, ResnetBlock2D) and module.time_emb_proj is not None:
                module.time_emb_proj = FrameTimeProj(module.time_emb_proj, self._text_context)

    __init__.__signature__ = inspect.signature(UNet3DConditionModel.__init__)

    def forward(self, sample, timestep, encoder_hidden_states, *args, **kwargs):
        w = self.frame_time.weight
        self._text_context.frame_temb = self.frame_time(frame_embedding(sample.shape[2], w.shape[1], w.device, w.dtype))
        try:
            return super().forward(sample, timestep, encoder_hidden_states, *args, **kwargs)
        finally:
            self._text_context.frame_temb = None
