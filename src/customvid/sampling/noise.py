"""Initial-noise samplers for video latents [B, C, F, H, W].

Every sampler has one signature, ``sampler(shape, generator, dtype, device) -> Tensor``, draws all
randomness from `generator` (so a seed fixes the result; Magic-Me's published code ignores the user's
generator, ours must not) and returns unit-variance noise. Draws happen on the generator's device and are
then moved, so a CPU generator gives the same noise whatever `device` is.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch

from customvid.errors import CustomvidError
from customvid.sampling._spec import parse_spec

NoiseSampler = Callable[
    [Sequence[int], torch.Generator | None, torch.dtype, torch.device | str], torch.Tensor
]
FRAME_DIM = 2  # latents are [B, C, F, H, W]


def _randn(shape: Sequence[int], generator: torch.Generator | None) -> torch.Tensor:
    device = generator.device if generator is not None else "cpu"
    return torch.randn(tuple(shape), generator=generator, device=device, dtype=torch.float32)


def _check_shape(shape: Sequence[int]) -> None:
    if len(shape) != 5:
        raise CustomvidError(f"noise samplers expect a latent shape [B, C, F, H, W], got {list(shape)}")


def iid(
    shape: Sequence[int], generator: torch.Generator | None, dtype: torch.dtype, device: torch.device | str
) -> torch.Tensor:
    """Independent N(0, 1) per element: the standard diffusion prior."""
    _check_shape(shape)
    return _randn(shape, generator).to(device=device, dtype=dtype)


def ar1(gamma: float = 0.15) -> NoiseSampler:
    """Magic-Me's 3D Gaussian prior: AR(1) along frames, corr(z_m, z_n) = gamma^|m-n|, unit variance.

    z_0 = e_0, z_f = gamma z_{f-1} + sqrt(1 - gamma^2) e_f, independent across channels and pixels.
    gamma = 0 is iid noise; gamma = 1 repeats frame 0. Published defaults: 0.05 (pipeline), 0.15 (workflow).
    """
    gamma = float(gamma)
    if not 0.0 <= gamma <= 1.0:
        raise CustomvidError(f"ar1 noise needs 0 <= gamma <= 1, got {gamma}")
    innovation = math.sqrt(1.0 - gamma * gamma)

    def sample(
        shape: Sequence[int],
        generator: torch.Generator | None,
        dtype: torch.dtype,
        device: torch.device | str,
    ) -> torch.Tensor:
        _check_shape(shape)
        eps = _randn(shape, generator)
        frames = [eps[:, :, 0]]
        for f in range(1, shape[FRAME_DIM]):
            frames.append(gamma * frames[-1] + innovation * eps[:, :, f])
        return torch.stack(frames, dim=FRAME_DIM).to(device=device, dtype=dtype)

    return sample


def mixed(alpha: float = 0.5) -> NoiseSampler:
    """Shared + independent noise (VideoFusion/PYoCo "mixed" prior): z_f = sqrt(a) s + sqrt(1 - a) e_f.

    `alpha` is the shared share of the variance, so every frame has unit variance and any two frames have
    correlation alpha (not decaying with distance, unlike ar1).
    """
    alpha = float(alpha)
    if not 0.0 <= alpha <= 1.0:
        raise CustomvidError(f"mixed noise needs 0 <= alpha <= 1, got {alpha}")

    def sample(
        shape: Sequence[int],
        generator: torch.Generator | None,
        dtype: torch.dtype,
        device: torch.device | str,
    ) -> torch.Tensor:
        _check_shape(shape)
        b, c, _, h, w = shape
        shared = _randn((b, c, 1, h, w), generator)
        own = _randn(shape, generator)
        return (math.sqrt(alpha) * shared + math.sqrt(1.0 - alpha) * own).to(device=device, dtype=dtype)

    return sample


# name -> factory taking the sampler's float parameters ("ar1:0.15" -> ar1(0.15)).
NOISE_SAMPLERS: dict[str, Callable[..., NoiseSampler]] = {"iid": lambda: iid, "ar1": ar1, "mixed": mixed}


def noise_sampler(spec: str | NoiseSampler) -> NoiseSampler:
    """A sampler from a name like 'iid', 'ar1:0.15' or 'mixed:0.5' (callables pass through)."""
    if callable(spec):
        return spec
    name, values = parse_spec(str(spec), "noise")
    factory = NOISE_SAMPLERS.get(name)
    if factory is None:
        raise CustomvidError(
            f"unknown noise {name!r}; expected one of {sorted(NOISE_SAMPLERS)} (e.g. 'ar1:0.15')"
        )
    try:
        return factory(*values)
    except TypeError:
        raise CustomvidError(f"wrong number of parameters for noise {name!r}: {spec!r}") from None
