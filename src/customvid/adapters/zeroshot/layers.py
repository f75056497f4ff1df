"""DreamVideo-2's trainable layers: residual reference cross-attention, the box encoder, and the spatial
ControlNet built from the video UNet's own spatial weights."""

from __future__ import annotations

import math
import re

import torch
import torch.nn.functional as F
from torch import nn

from customvid.adapters.base import plain_name
from customvid.errors import CustomvidError
from customvid.models.backbones import SPATIAL_BLOCK, find_modules


class ReferenceAttention(nn.Module):
    """Video tokens (queries) attend to the reference image's tokens of the same layer through new projections;
    the output layer starts at zero, so an untrained adapter leaves the model exactly as it was."""

    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.heads = heads
        self.to_q, self.to_k, self.to_v = (nn.Linear(dim, dim, bias=False) for _ in range(3))
        self.to_out = nn.Linear(dim, dim)
        nn.init.zeros_(self.to_out.weight)
        nn.init.zeros_(self.to_out.bias)

    def forward(self, x: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
        def split(t):
            return t.unflatten(-1, (self.heads, -1)).transpose(1, 2)

        out = F.scaled_dot_product_attention(split(self.to_q(x)), split(self.to_k(ref)), split(self.to_v(ref)))
        return self.to_out(out.transpose(1, 2).flatten(2))


def spatial_attention_blocks(unet: nn.Module) -> list[str]:
    """The spatial transformer blocks (same names in both backbones): where reference attention goes."""
    return find_modules(unet, SPATIAL_BLOCK)


def frame_positions(frames: int, dim: int, device, dtype) -> torch.Tensor:
    """Sinusoidal frame-index features [F, dim]: the temporal attention knows which frame is which."""
    pos = torch.arange(frames, device=device, dtype=torch.float32)[:, None]
    freq = torch.exp(-math.log(10_000.0) * torch.arange(0, dim, 2, device=device, dtype=torch.float32) / dim)
    pe = torch.zeros(frames, dim, device=device)
    pe[:, 0::2], pe[:, 1::2] = torch.sin(pos * freq), torch.cos(pos * freq[: dim // 2])
    return pe.to(dtype)


class TemporalAttention(nn.Module):
    """Pre-norm self-attention over the frames of each spatial position, with a residual."""

    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.attn = nn.MultiheadAttention(dim, heads, batch_first=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [N, F, C]
        h = self.norm(x)
        return x + self.attn(h, h, h, need_weights=False)[0]


class BoxEncoder(nn.Module):
    """Box masks [B, F, H, W] (video pixels) -> per-frame features [B*F, C, h, w] at the latent grid: stride-2
    convs with SiLU, two temporal attention layers, an output conv (zero-initialised, as ControlNet's condition
    embedding: training starts from the unchanged model)."""

    def __init__(self, out_channels: int, downscale: int, channels: tuple[int, ...] = (16, 32, 64), heads: int = 4):
        super().__init__()
        halvings = int(round(math.log2(downscale)))
        if 2**halvings != downscale:
            raise CustomvidError(f"the box encoder needs a power-of-two VAE downscale, got {downscale}")
        widths = [channels[min(i, len(channels) - 1)] for i in range(halvings)] or [channels[0]]
        layers: list[nn.Module] = [nn.Conv2d(1, widths[0], 3, padding=1), nn.SiLU()]
        for i in range(halvings):
            layers += [nn.Conv2d(widths[max(i - 1, 0)] if i else widths[0], widths[i], 3, stride=2, padding=1),
                       nn.SiLU()]
        self.convs = nn.Sequential(*layers)
        dim = widths[-1]
        self.temporal = nn.ModuleList([TemporalAttention(dim, heads), TemporalAttention(dim, heads)])
        self.out = nn.Conv2d(dim, out_channels, 3, padding=1)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, masks: torch.Tensor) -> torch.Tensor:
        b, f, hh, ww = masks.shape
        x = self.convs(masks.reshape(b * f, 1, hh, ww))
        c, h, w = x.shape[1:]
        # [B*F, C, h, w] -> [B*h*w, F, C]: attention runs along time at every grid cell
        seq = x.reshape(b, f, c, h * w).permute(0, 3, 1, 2).reshape(b * h * w, f, c)
        seq = seq + frame_positions(f, c, seq.device, seq.dtype)
        for layer in self.temporal:
            seq = layer(seq)
        x = seq.reshape(b, h * w, f, c).permute(0, 2, 3, 1).reshape(b * f, c, h, w)
        return self.out(x)


_2D_BLOCKS = {"CrossAttnDownBlock3D": "CrossAttnDownBlock2D", "DownBlock3D": "DownBlock2D",
              "CrossAttnDownBlockMotion": "CrossAttnDownBlock2D", "DownBlockMotion": "DownBlock2D"}
# parameters of a video UNet that a per-frame ControlNet does not have
_TEMPORAL = re.compile(r"transformer_in\.|\.temp_(convs|attentions)\.|\.motion_modules\.")


def _heads(unet: nn.Module, block: nn.Module) -> int:
    for name, module in block.named_modules():
        if name.endswith("transformer_blocks.0.attn1"):
            return module.heads
    return 1


def _linear_projection(unet: nn.Module) -> bool:
    # UNet3DConditionModel builds its spatial transformers with linear in/out projections whatever its config says
    names = find_modules(unet, r"(down_blocks\.\d+|mid_block)\.attentions\.\d+\.proj_in")
    return bool(names) and isinstance(unet.get_submodule(names[0]), nn.Linear)


def spatial_controlnet(unet: nn.Module) -> nn.Module:
    """A diffusers `ControlNetModel` with the video UNet's down path, initialised from its spatial weights (the
    ControlNet recipe: a trainable copy of the encoder, zero convolutions out). It runs per frame; its residuals
    enter the UNet through `down_block_additional_residuals` / `mid_block_additional_residual`."""
    from diffusers import ControlNetModel

    cfg = unet.config
    try:
        down = [_2D_BLOCKS[t] for t in cfg.down_block_types]
    except KeyError as err:
        raise CustomvidError(f"no spatial ControlNet layout for down block {err.args[0]!r}") from None
    heads = [_heads(unet, b) for b in unet.down_blocks]
    heads[-1] = max(heads[-1], _heads(unet, unet.mid_block))
    net = ControlNetModel(
        in_channels=cfg.in_channels, down_block_types=tuple(down), block_out_channels=tuple(cfg.block_out_channels),
        layers_per_block=cfg.layers_per_block, downsample_padding=cfg.downsample_padding,
        mid_block_scale_factor=cfg.mid_block_scale_factor, act_fn=cfg.act_fn, norm_num_groups=cfg.norm_num_groups,
        norm_eps=cfg.norm_eps, cross_attention_dim=cfg.cross_attention_dim,
        # diffusers' ControlNetModel reads attention_head_dim as the number of heads (its documented quirk)
        attention_head_dim=tuple(heads), use_linear_projection=_linear_projection(unet),
        conditioning_embedding_out_channels=(16,),
    )
    net.controlnet_cond_embedding = nn.Identity()  # the box encoder gives the features at the latent grid
    # the base model's own spatial weights, whatever other adapters attached before wrap them
    source = {name: v for k, v in unet.state_dict().items()
              if (name := plain_name(k)) is not None and not _TEMPORAL.search(name)}
    target = net.state_dict()
    copied = {k: source[k] for k in target if k in source and source[k].shape == target[k].shape}
    missing = [k for k in target if k not in copied and not k.startswith("controlnet_")]
    if missing:
        raise CustomvidError(f"the UNet's spatial weights do not fit its ControlNet copy (e.g. {missing[0]})")
    net.load_state_dict(copied, strict=False)
    return net
