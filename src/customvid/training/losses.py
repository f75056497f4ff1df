"""Diffusion losses shared by the adapter methods (each method picks its own and says why)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from customvid.models.backbones import unet_forward


def diffusion_target(scheduler, latents: torch.Tensor, noise: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    kind = scheduler.config.prediction_type
    if kind == "epsilon":
        return noise
    if kind == "v_prediction":
        return scheduler.get_velocity(latents, noise, t)
    raise ValueError(f"unsupported prediction_type {kind!r}")


def per_sample_loss(
    unet,
    scheduler,
    latents: torch.Tensor,
    text: torch.Tensor,
    noise: torch.Tensor,
    t: torch.Tensor,
    mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """[B] MSE of the model's prediction; with `mask` [B, 1, F, h, w] the mask-normalised form
    sum(m * err) / sum(m) (Magic-Me), which equals the plain mean for an all-ones mask."""
    noisy = scheduler.add_noise(latents, noise, t)
    pred = unet_forward(unet, noisy, t, text)
    err = F.mse_loss(pred.float(), diffusion_target(scheduler, latents, noise, t).float(), reduction="none")
    if mask is None:
        return err.mean(dim=tuple(range(1, err.ndim)))
    m = mask.expand_as(err)
    return (m * err).sum(dim=tuple(range(1, err.ndim))) / m.sum(dim=tuple(range(1, err.ndim))).clamp_min(1e-8)
