"""Tiny random-weight components (diffusers `get_dummy_components` style) for tests, benchmarks, smoke runs.

Sizes are chosen so a CFG step on 8 frames of 64x64 px takes well under a second on one CPU core, while every
block type of the real backbones is present (cross-attention down/up blocks, plain blocks, temporal layers).
Cross-attention width defaults to 384 so the real MiniLM text encoder plugs in.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import torch
from diffusers import (
    AutoencoderKL,
    DDPMScheduler,
    MotionAdapter,
    UNet2DConditionModel,
    UNet3DConditionModel,
    UNetMotionModel,
)

from customvid.errors import CustomvidError
from customvid.models.components import Components, embedded_components, merge_motion_unet

T = TypeVar("T")

TINY_CHANNELS = (32, 64)
TINY_GROUPS = 8
TINY_HEADS = (
    8  # UNet3DConditionModel reads `attention_head_dim` as the number of heads (diffusers legacy naming)
)


def _seeded(seed: int, build: Callable[[], T]) -> T:
    # Fork the global RNG so building a fixture never shifts the random stream of the caller.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build()


def tiny_unet3d(cross_attention_dim: int = 384, seed: int = 0) -> UNet3DConditionModel:
    return _seeded(
        seed,
        lambda: UNet3DConditionModel(
            sample_size=16,
            in_channels=4,
            out_channels=4,
            down_block_types=("CrossAttnDownBlock3D", "DownBlock3D"),
            up_block_types=("UpBlock3D", "CrossAttnUpBlock3D"),
            block_out_channels=TINY_CHANNELS,
            layers_per_block=1,
            norm_num_groups=TINY_GROUPS,
            cross_attention_dim=cross_attention_dim,
            attention_head_dim=TINY_HEADS,
        ),
    )


def tiny_unet3d_frame_time(cross_attention_dim: int = 384, seed: int = 0) -> UNet3DConditionModel:
    """The tiny UNet3D in the frame-time architecture (`train-base --frame-time`, what the embedded model is trained
    with), its new layers set non-zero so that code which ignores them shows it."""
    from customvid.models.temporal_text import FrameTimeUNet3DConditionModel

    unet = FrameTimeUNet3DConditionModel.from_unet3d(tiny_unet3d(cross_attention_dim, seed))
    g = torch.Generator().manual_seed(seed + 2)
    with torch.no_grad():
        for param in unet.text_temporal_parameters():
            param.copy_(0.05 * torch.randn(param.shape, generator=g))
    return unet


def tiny_unet2d(cross_attention_dim: int = 384, seed: int = 0) -> UNet2DConditionModel:
    return _seeded(
        seed,
        lambda: UNet2DConditionModel(
            sample_size=16,
            in_channels=4,
            out_channels=4,
            down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
            up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
            block_out_channels=TINY_CHANNELS,
            layers_per_block=1,
            norm_num_groups=TINY_GROUPS,
            cross_attention_dim=cross_attention_dim,
            attention_head_dim=TINY_HEADS,
        ),
    )


def tiny_motion_adapter(seed: int = 1) -> MotionAdapter:
    return _seeded(
        seed,
        lambda: MotionAdapter(
            block_out_channels=TINY_CHANNELS,
            motion_layers_per_block=1,
            motion_norm_num_groups=TINY_GROUPS,
            motion_num_attention_heads=4,
            motion_max_seq_length=32,
        ),
    )


def tiny_vae(seed: int = 2) -> AutoencoderKL:
    """64x64 px <-> 16x16x4 latents (scale factor 4)."""
    return _seeded(
        seed,
        lambda: AutoencoderKL(
            in_channels=3,
            out_channels=3,
            down_block_types=("DownEncoderBlock2D",) * 3,
            up_block_types=("UpDecoderBlock2D",) * 3,
            block_out_channels=(16, 32, 32),
            layers_per_block=1,
            latent_channels=4,
            norm_num_groups=TINY_GROUPS,
            sample_size=64,
        ),
    )


def tiny_scheduler(prediction_type: str = "v_prediction") -> DDPMScheduler:
    return DDPMScheduler(
        num_train_timesteps=1000,
        beta_schedule="scaled_linear",
        beta_start=0.00085,
        beta_end=0.012,
        prediction_type=prediction_type,
        clip_sample=False,
    )


def tiny_unet_motion(cross_attention_dim: int = 384, seed: int = 0) -> UNetMotionModel:
    """Tiny SD-style UNet + tiny motion adapter, merged like a real AnimateDiff checkpoint."""
    return merge_motion_unet(tiny_unet2d(cross_attention_dim, seed), tiny_motion_adapter(seed + 1))


def tiny_components(kind: str = "unet3d", frames: int = 8, fps: float = 4.0) -> Components:
    """MiniLM-conditioned tiny components (random UNet/VAE, v-prediction DDPM config), 64x64 px, eval mode."""
    builders = {"unet3d": tiny_unet3d, "unet3d_frame_time": tiny_unet3d_frame_time, "unet_motion": tiny_unet_motion}
    if kind not in builders:
        raise CustomvidError(f"unknown backbone kind {kind!r}; expected one of {sorted(builders)}")
    unet = builders[kind]().eval()
    return embedded_components(
        unet, tiny_vae().eval(), tiny_scheduler(), frames=frames, height=64, width=64, fps=fps
    )
