"""Video-to-video: generate's init_latents/strength path and `video_to_video` / `refine_clip` on tiny models."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from diffusers import DDPMScheduler

from customvid.errors import CustomvidError
from customvid.refine import refine_clip, video_to_video, windows
from customvid.sampling import generate, make_solver, noise_sampler
from customvid.training.subject import encode_clips
from customvid.world import render_clip, spec_from_caption

PROMPT = "a red circle moving left on a blue background"
RUN = {"num_frames": 2, "height": 32, "width": 32}


@pytest.fixture(scope="module")
def small(tiny_components):
    """The tiny model at 2 frames of 32x32 px: what `video_to_video` and `refine_clip` take as its format."""
    return dataclasses.replace(tiny_components, default_frames=2, default_size=(32, 32))


@pytest.fixture(scope="module")
def clip():
    return render_clip(spec_from_caption(PROMPT, frames=2, width=32, height=32)).frames


def _latents(seed: int = 0) -> torch.Tensor:
    return noise_sampler("iid")((1, 4, 2, 8, 8), torch.Generator().manual_seed(seed), torch.float32, "cpu")


def test_strength_one_on_a_zero_terminal_snr_schedule_is_plain_generate(tiny_components):
    # Strength 1 noises to timesteps[0]; only where that is pure noise (zero terminal SNR, trailing spacing)
    # does nothing of the input survive, and then the run is plain text-to-video with the same seeded noise.
    config = {k: v for k, v in tiny_components.scheduler.config.items() if not k.startswith("_")}
    config.update(rescale_betas_zero_snr=True, timestep_spacing="trailing")
    components = dataclasses.replace(tiny_components, scheduler=DDPMScheduler.from_config(config))
    plain = generate(components, PROMPT, seed=3, num_inference_steps=2, output_type="latent", **RUN)
    v2v = generate(components, PROMPT, seed=3, num_inference_steps=2, output_type="latent", init_latents=_latents(9),
                   strength=1.0, **RUN)
    assert torch.equal(plain.latents, v2v.latents)


def test_strength_one_elsewhere_starts_from_the_noised_input(tiny_components):
    # On the tiny model's leading schedule timesteps[0] is 500: the input still shows through, as in diffusers.
    init, noise = _latents(9), _latents(3)
    solver = make_solver("ddim", tiny_components.scheduler.config)
    solver.set_timesteps(2)
    noised = solver.add_noise(init, noise, solver.timesteps[:1])
    plain = generate(tiny_components, PROMPT, latents=noised, num_inference_steps=2, output_type="latent", **RUN)
    v2v = generate(tiny_components, PROMPT, latents=noise, init_latents=init, strength=1.0, num_inference_steps=2,
                   output_type="latent", **RUN)
    assert torch.equal(plain.latents, v2v.latents)


@pytest.mark.parametrize(("strength", "ran"), [(0.3, [7, 8, 9]), (0.01, [9]), (1.0, list(range(10)))])
def test_strength_runs_the_last_steps_of_the_full_schedule(tiny_components, strength, ran):
    seen = []
    generate(tiny_components, PROMPT, init_latents=_latents(), strength=strength, num_inference_steps=10,
             output_type="latent", callback=lambda i, t, x, s: seen.append((i, int(t), s["num_steps"])), **RUN)
    solver = make_solver("ddim", tiny_components.scheduler.config)
    solver.set_timesteps(10)
    assert seen == [(i, int(solver.timesteps[i]), 10) for i in ran]


def test_multistep_solver_starts_mid_schedule(tiny_components):
    out = generate(tiny_components, PROMPT, init_latents=_latents(), strength=0.5, num_inference_steps=4,
                   solver="dpm++", output_type="latent", **RUN)
    assert torch.isfinite(out.latents).all()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"strength": 0.5}, "needs init_latents"), ({"init_latents": _latents(), "strength": 0.0}, r"in \(0, 1\]"),
     ({"init_latents": _latents(), "strength": 1.5}, r"in \(0, 1\]"),
     ({"init_latents": torch.zeros(1, 4, 2, 4, 4), "strength": 0.5}, "init_latents have shape")],
)
def test_strength_errors(tiny_components, kwargs, message):
    with pytest.raises(CustomvidError, match=message):
        generate(tiny_components, PROMPT, num_inference_steps=2, output_type="latent", **RUN, **kwargs)


def test_video_to_video_is_seeded_and_takes_batches(small, clip):
    a = video_to_video(small, clip, PROMPT, 0.5, num_inference_steps=2, seed=1)
    assert a.shape == clip.shape and a.dtype == np.uint8
    np.testing.assert_array_equal(a, video_to_video(small, clip, PROMPT, 0.5, num_inference_steps=2, seed=1))
    assert not np.array_equal(a, video_to_video(small, clip, PROMPT, 0.5, num_inference_steps=2, seed=2))
    both = video_to_video(small, np.stack([clip, clip]), PROMPT, 0.5, num_inference_steps=2, seed=1)
    assert both.shape == (2, *clip.shape)
    assert np.abs(both[0].astype(int) - a).max() <= 1  # clip i of a batch is seeded seed + i


@pytest.mark.parametrize(
    ("frames", "message"),
    [(np.zeros((3, 32, 32, 3), np.uint8), "needs the model's 2 frames"),
     (np.zeros((2, 30, 32, 3), np.uint8), "multiples of 4"),
     (np.zeros((2, 32, 32, 3), np.float32), "expected uint8 frames")],
)
def test_video_to_video_input_errors(small, frames, message):
    with pytest.raises(CustomvidError, match=message):
        video_to_video(small, frames, PROMPT, 0.5, num_inference_steps=2)


def test_small_strength_stays_close_to_the_input():
    # Needs a trained model: a random tiny UNet moves latents anywhere at any strength. The embedded one is small.
    from customvid.models import load_components
    from customvid.sampling import decode_latents, to_uint8

    components = load_components()
    frames = render_clip(spec_from_caption(PROMPT, frames=components.default_frames)).frames
    with torch.no_grad():
        round_trip = to_uint8(decode_latents(components.vae, encode_clips(components.vae, frames[None])))[0]
    light = video_to_video(components, frames, PROMPT, 0.1, num_inference_steps=10)
    full = video_to_video(components, frames, PROMPT, 1.0, num_inference_steps=3)
    light_change = np.abs(light.astype(int) - round_trip).mean()
    assert light_change < 6 and light_change < 0.5 * np.abs(full.astype(int) - round_trip).mean()


def test_windows_cover_the_clip():
    assert windows(1, 2) == [0] and windows(4, 2) == [0, 2] and windows(5, 2) == [0, 2, 3] and windows(8, 8) == [0]


def test_refine_clip_takes_any_size_and_length(small, clip):
    frames = np.concatenate([clip, clip[:1]])[:, 4:24, 2:26]  # 3 frames of 20x24 px
    out = refine_clip(small, frames, PROMPT, 0.5, num_inference_steps=2)
    assert out.shape == frames.shape and out.dtype == np.uint8
    one = refine_clip(small, frames[:1], PROMPT, 0.5, num_inference_steps=2)  # shorter than the model's clip
    assert one.shape == frames[:1].shape
