"""Text-to-video sampling: one readable denoising loop over `Components` (diffusers' TextToVideoSDPipeline is
deprecated, and ours needs hooks it lacks: noise priors, per-step callbacks, both video backbones).

Flow: encode prompts -> initial noise from a prior -> solver loop with classifier-free guidance (cond and
uncond in one UNet call) -> frame-wise VAE decode in chunks. Per-sample CPU generators make a prompt's video
depend only on its own seed, not on the batch it was generated in or on the device.
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from diffusers import DDIMScheduler, DPMSolverMultistepScheduler
from tqdm.auto import tqdm

from customvid.errors import CustomvidError
from customvid.models.backbones import unet_forward
from customvid.models.components import Components
from customvid.sampling.noise import NoiseSampler, noise_sampler
from customvid.sampling.schedules import Schedule

# callback(step_index, timestep, latents, state) -> None or a dict of state updates; see `generate`.
Callback = Callable[[int, torch.Tensor, torch.Tensor, dict[str, Any]], Mapping[str, Any] | None]
OUTPUT_TYPES = ("np", "pt", "latent")


def _accepted(cls: type, config: Mapping[str, Any]) -> dict[str, Any]:
    # Keep only keys the solver knows: a DDPM config carries e.g. variance_type, which DDIM would warn about.
    params = inspect.signature(cls.__init__).parameters
    return {k: v for k, v in config.items() if k in params}


# name -> builder from the model's scheduler config (betas, prediction_type eps/v, spacing are inherited).
# DDIM never clips x0: latents are not bounded to [-1, 1] (DDPM configs default clip_sample=True for pixels).
SOLVERS: dict[str, Callable[[Mapping[str, Any]], Any]] = {
    "ddim": lambda cfg: DDIMScheduler.from_config({**_accepted(DDIMScheduler, cfg), "clip_sample": False}),
    "dpm++": lambda cfg: DPMSolverMultistepScheduler.from_config(
        {**_accepted(DPMSolverMultistepScheduler, cfg), "algorithm_type": "dpmsolver++", "solver_order": 2}
    ),
}


def make_solver(name: str, scheduler_config: Mapping[str, Any]) -> Any:
    """A fresh solver (schedulers are stateful, so one per run) built from a model's scheduler config."""
    builder = SOLVERS.get(name)
    if builder is None:
        raise CustomvidError(f"unknown solver {name!r}; expected one of {sorted(SOLVERS)}")
    return builder(dict(scheduler_config))


@dataclass
class GenerateOutput:
    frames: np.ndarray | torch.Tensor | None  # 'np': uint8 [B,F,H,W,3]; 'pt': float [B,F,3,H,W] in [0,1]
    latents: torch.Tensor  # final latents [B, C, F, h, w]
    # seconds: encode (text, noise and solver setup), denoise, decode, total
    timings: dict[str, float] = field(default_factory=dict)


def _apply_update(
    update: Mapping[str, Any] | None, latents: torch.Tensor, state: dict[str, Any]
) -> torch.Tensor:
    """Merge a callback's returned updates into `state`; a 'latents' entry replaces the latents."""
    if update is None:
        return latents
    if not isinstance(update, Mapping):
        raise CustomvidError(f"a sampling callback must return None or a dict, not {type(update).__name__}")
    update = dict(update)
    latents = update.pop("latents", latents)
    state.update(update)
    return latents


def _prompt_list(prompts: str | Sequence[str], what: str) -> list[str]:
    items = [prompts] if isinstance(prompts, str) else list(prompts)
    if not items or not all(isinstance(p, str) for p in items):
        raise CustomvidError(f"{what} must be a string or a non-empty list of strings")
    return items


def _generators(
    seed: int | Sequence[int] | None,
    generator: torch.Generator | Sequence[torch.Generator] | None,
    batch: int,
) -> list[torch.Generator | None]:
    """One generator per sample: the given ones, else CPU generators seeded seed, seed+1, ... (or a list)."""
    if generator is not None:
        # A single generator is shared: the samples draw from it in turn.
        gens = list(generator) if isinstance(generator, Sequence) else [generator] * batch
    elif seed is None:
        gens = [None] * batch  # global RNG: not reproducible, on request
    else:
        seeds = [int(seed) + i for i in range(batch)] if isinstance(seed, int) else [int(s) for s in seed]
        gens = [torch.Generator("cpu").manual_seed(s) for s in seeds]
    if len(gens) != batch:
        raise CustomvidError(f"got {len(gens)} seeds/generators for {batch} prompts")
    return gens


def latent_shape(
    components: Components,
    batch: int,
    num_frames: int | None = None,
    height: int | None = None,
    width: int | None = None,
) -> tuple[int, ...]:
    """Latent shape [B, C, F, h, w] of a video of the given size (None: the model's default), validated."""
    frames = components.default_frames if num_frames is None else num_frames
    height = components.default_size[0] if height is None else height
    width = components.default_size[1] if width is None else width
    factor = components.vae_scale_factor
    if frames < 1 or height < 1 or width < 1:
        raise CustomvidError(f"frames, height and width must be positive, got {frames}, {height}, {width}")
    if height % factor or width % factor:
        raise CustomvidError(
            f"height and width must be multiples of {factor} (the VAE's downscale), got {height}x{width}"
        )
    max_frames = getattr(components.unet.config, "motion_max_seq_length", None)
    if components.kind == "unet_motion" and max_frames and frames > max_frames:
        raise CustomvidError(f"this motion module handles at most {max_frames} frames, got {frames}")
    return (batch, components.latent_channels, frames, height // factor, width // factor)


def _v2v_start(steps: int, strength: float, init_latents: torch.Tensor | None, shape: tuple[int, ...]) -> int:
    """Index of the first timestep a video-to-video run takes (0 without init latents), validated."""
    if init_latents is None:
        if strength != 1.0:
            raise CustomvidError("strength needs init_latents (the clean latents to start from)")
        return 0
    if not 0.0 < strength <= 1.0:
        raise CustomvidError(f"strength must be in (0, 1], got {strength}")
    if tuple(init_latents.shape) != shape:
        raise CustomvidError(f"init_latents have shape {list(init_latents.shape)}, expected {list(shape)}")
    return steps - max(1, round(steps * strength))


def synced_time(device: torch.device) -> float:
    # Timings must include queued GPU work.
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter()


def decode_latents(vae: Any, latents: torch.Tensor, chunk_size: int = 8) -> torch.Tensor:
    """Latents [B, C, F, h, w] -> video [B, F, 3, H, W] in [0, 1], decoding `chunk_size` frames per VAE call
    (peak memory grows with the chunk, not the clip)."""
    if chunk_size < 1:
        raise CustomvidError(f"decode chunk size must be >= 1, got {chunk_size}")
    b, c, f, h, w = latents.shape
    x = latents.permute(0, 2, 1, 3, 4).reshape(b * f, c, h, w).to(vae.dtype) / vae.config.scaling_factor
    if getattr(vae.config, "shift_factor", None):
        x = x + vae.config.shift_factor
    images = torch.cat([vae.decode(x[i : i + chunk_size]).sample for i in range(0, b * f, chunk_size)])
    return (images.float() / 2 + 0.5).clamp(0, 1).reshape(b, f, *images.shape[1:])


def to_uint8(video: torch.Tensor) -> np.ndarray:
    """[B, F, 3, H, W] in [0, 1] -> uint8 numpy [B, F, H, W, 3]."""
    return (video * 255).round().to(torch.uint8).permute(0, 1, 3, 4, 2).cpu().numpy()


@torch.no_grad()
def generate(
    components: Components,
    prompts: str | Sequence[str],
    negative_prompt: str | Sequence[str] = "",
    num_frames: int | None = None,
    height: int | None = None,
    width: int | None = None,
    num_inference_steps: int = 25,
    guidance_scale: float = 7.5,
    seed: int | Sequence[int] | None = 0,
    generator: torch.Generator | Sequence[torch.Generator] | None = None,
    solver: str = "ddim",
    noise: str | NoiseSampler = "iid",
    callback: Callback | None = None,
    output_type: str = "np",
    latents: torch.Tensor | None = None,
    cross_attention_kwargs: dict[str, Any] | None = None,
    decode_chunk_size: int = 8,
    progress: bool = False,
    adapters: Sequence[Any] = (),
    init_latents: torch.Tensor | None = None,
    strength: float = 1.0,
) -> GenerateOutput:
    """Sample one video per prompt.

    seed: prompt i uses a CPU generator seeded `seed + i` (or `seed[i]` for a list); `generator` overrides it.
    noise: a sampler or a name ('iid', 'ar1:0.15', 'mixed:0.5'); `latents` [B,C,F,h,w] replaces it.
    guidance_scale: classifier-free guidance; exactly 1 runs the conditional branch only (half the batch).
    callback(step_index, t, latents, state) runs before each UNet call. `state` holds 'guidance_scale',
    'cross_attention_kwargs' (passed to the UNet), 'step', 'num_steps' and 'timesteps'. It may mutate `state`
    in place or return a dict of updates; a returned 'latents' replaces the current latents. Changes apply
    from the current step on. Adapter weights can be set from it directly (see `weight_callback`).
    output_type: 'np' (uint8 [B,F,H,W,3]), 'pt' (float [B,F,3,H,W] in [0,1]) or 'latent' (no decode).
    adapters: attached adapters (`customvid.adapters`) whose `.schedule` sets their weight at every step
    (through `weight_callback`, before `callback`); their weights are restored afterwards.
    init_latents, strength: video-to-video (diffusers' img2img convention). The clean scaled latents
    [B,C,F,h,w] are noised (`scheduler.add_noise`, with the seeded noise above or `latents`) to the first of
    the last max(1, round(N * strength)) of the N timesteps, and only those run. Step indices (callbacks,
    adapter schedules) stay those of the full N-step schedule, so a weight schedule sees the noise level
    it was written for. strength 1 starts from timestep[0], which is pure noise only on a zero-terminal-SNR
    schedule; elsewhere some of the input survives, as in diffusers.
    """
    t0 = time.perf_counter()
    prompt_list = _prompt_list(prompts, "prompts")
    negatives = _prompt_list(negative_prompt, "negative_prompt")
    batch = len(prompt_list)
    if len(negatives) == 1:
        negatives = negatives * batch
    if len(negatives) != batch:
        raise CustomvidError(f"got {len(negatives)} negative prompts for {batch} prompts")
    if num_inference_steps < 1:
        raise CustomvidError(f"num_inference_steps must be >= 1, got {num_inference_steps}")
    if output_type not in OUTPUT_TYPES:
        raise CustomvidError(f"unknown output_type {output_type!r}; expected one of {OUTPUT_TYPES}")
    shape = latent_shape(components, batch, num_frames, height, width)
    device, dtype = components.device, components.dtype
    scheduler = make_solver(solver, components.scheduler.config)
    scheduler.set_timesteps(num_inference_steps, device=device)
    start = _v2v_start(num_inference_steps, strength, init_latents, shape)
    if start and hasattr(scheduler, "set_begin_index"):
        scheduler.set_begin_index(start)  # multistep solvers: their state starts mid-schedule

    if latents is None:
        sampler = noise_sampler(noise)
        gens = _generators(seed, generator, batch)
        latents = torch.cat([sampler((1, *shape[1:]), g, dtype, device) for g in gens])
    elif tuple(latents.shape) != shape:
        raise CustomvidError(f"latents have shape {list(latents.shape)}, expected {list(shape)}")
    latents = latents.to(device=device, dtype=dtype)
    if init_latents is None:
        latents = latents * scheduler.init_noise_sigma
    else:
        clean = init_latents.to(device=device, dtype=dtype)
        latents = scheduler.add_noise(clean, latents, scheduler.timesteps[start : start + 1])

    state: dict[str, Any] = {
        "guidance_scale": float(guidance_scale),
        "cross_attention_kwargs": cross_attention_kwargs,
        "num_steps": len(scheduler.timesteps),
        "timesteps": scheduler.timesteps,
    }
    cond = components.encode_prompt(prompt_list)
    # [uncond; cond] text states, built once; lazily if guidance starts at 1 (a callback may switch it on).
    both = torch.cat([components.encode_prompt(negatives), cond]) if state["guidance_scale"] != 1.0 else None
    t1 = synced_time(device)
    restore = [(a, a.weight) for a in adapters]
    if adapters:
        weight_callbacks = [weight_callback(a.schedule, a.set_weight, f"adapter_weight/{a.name}") for a in adapters]
        callback = chain_callbacks(*weight_callbacks, callback)

    for i, t in enumerate(tqdm(scheduler.timesteps[start:], desc="denoising", disable=not progress), start):
        state["step"] = i
        if callback is not None:
            latents = _apply_update(callback(i, t, latents, state), latents, state)
        scale = float(state["guidance_scale"])
        if scale != 1.0:
            if both is None:
                both = torch.cat([components.encode_prompt(negatives), cond])
            text, model_in = both, torch.cat([latents, latents])
        else:
            text, model_in = cond, latents
        model_in = scheduler.scale_model_input(model_in, t)
        components.uncond_rows = batch if scale != 1.0 else 0
        try:
            pred = unet_forward(
                components.unet, model_in, t, text, cross_attention_kwargs=state["cross_attention_kwargs"]
            )
        finally:
            components.uncond_rows = 0
        if scale != 1.0:
            pred_uncond, pred_cond = pred.chunk(2)
            pred = pred_uncond + scale * (pred_cond - pred_uncond)
        latents = scheduler.step(pred, t, latents, return_dict=False)[0]
    for adapter, weight in restore:
        adapter.set_weight(weight)
    t2 = synced_time(device)

    frames: np.ndarray | torch.Tensor | None = None
    if output_type != "latent":
        video = decode_latents(components.vae, latents, decode_chunk_size)
        frames = to_uint8(video) if output_type == "np" else video
    t3 = synced_time(device)
    timings = {"encode": t1 - t0, "denoise": t2 - t1, "decode": t3 - t2, "total": t3 - t0}
    return GenerateOutput(frames=frames, latents=latents, timings=timings)


def weight_callback(
    schedule: Schedule, apply: Callable[[float], None] | None = None, key: str = "adapter_weight"
) -> Callback:
    """A callback that sets ``state[key] = schedule(step, num_steps)`` every step and calls ``apply(weight)``
    (e.g. a LoRA scale setter), so the weight is in force for that step's UNet call."""

    def callback(step: int, t: torch.Tensor, latents: torch.Tensor, state: dict[str, Any]) -> None:
        weight = schedule(step, state["num_steps"])
        state[key] = weight
        if apply is not None:
            apply(weight)

    return callback


def chain_callbacks(*callbacks: Callback | None) -> Callback:
    """Run several callbacks in order; each sees the state (and latents) left by the previous one."""
    active = [cb for cb in callbacks if cb is not None]

    def callback(step: int, t: torch.Tensor, latents: torch.Tensor, state: dict[str, Any]) -> dict[str, Any]:
        for cb in active:
            latents = _apply_update(cb(step, t, latents, state), latents, state)
        return {"latents": latents}

    return callback
