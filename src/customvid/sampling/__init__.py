"""Sampling: noise priors, per-step weight schedules and the text-to-video denoising loop."""

from customvid.sampling.noise import NOISE_SAMPLERS, NoiseSampler, ar1, iid, mixed, noise_sampler
from customvid.sampling.pipeline import (
    SOLVERS,
    Callback,
    GenerateOutput,
    chain_callbacks,
    decode_latents,
    generate,
    latent_shape,
    make_solver,
    to_uint8,
    weight_callback,
)
from customvid.sampling.schedules import (
    SCHEDULES,
    Schedule,
    constant,
    linear,
    schedule_values,
    step,
    weight_schedule,
)

__all__ = [
    "NOISE_SAMPLERS",
    "SCHEDULES",
    "SOLVERS",
    "Callback",
    "GenerateOutput",
    "NoiseSampler",
    "Schedule",
    "ar1",
    "chain_callbacks",
    "constant",
    "decode_latents",
    "generate",
    "iid",
    "latent_shape",
    "linear",
    "make_solver",
    "mixed",
    "noise_sampler",
    "schedule_values",
    "step",
    "to_uint8",
    "weight_callback",
    "weight_schedule",
]
