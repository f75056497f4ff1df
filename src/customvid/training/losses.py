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


def predict(unet, scheduler, latents, text, noise, t) -> tuple[torch.Tensor, torch.Tensor]:
    """The model's prediction on the noised latents and what it should have predicted (float32 both)."""
    noisy = scheduler.add_noise(latents, noise, t)
    pred = unet_forward(unet, noisy, t, text)
    return pred.float(), diffusion_target(scheduler, latents, noise, t).float()


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
    pred, target = predict(unet, scheduler, latents, text, noise, t)
    err = F.mse_loss(pred, target, reduction="none")
    if mask is None:
        return err.mean(dim=tuple(range(1, err.ndim)))
    m = mask.expand_as(err)
    return (m * err).sum(dim=tuple(range(1, err.ndim))) / m.sum(dim=tuple(range(1, err.ndim))).clamp_min(1e-8)


def appearance_debiased(x: torch.Tensor, anchor: torch.Tensor, beta: float = 1.0) -> torch.Tensor:
    """MotionDirector's appearance-debiased form of a video tensor [B, C, F, h, w]: alpha * x_i - beta * x_a with
    anchor frame a per sample and alpha = sqrt(beta^2 + 1) (keeps unit variance for independent frames). What all
    frames share -- the appearance -- shrinks to (alpha - beta) of itself, while what changes between frames -- the
    motion -- grows by alpha."""
    alpha = (beta**2 + 1) ** 0.5
    a = x[torch.arange(len(x)), :, anchor][:, :, None]
    return alpha * x - beta * a
