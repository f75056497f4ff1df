"""The sampling loop: output formats, seeding, equality with a plain diffusers loop, classifier-free guidance,
per-step callbacks, noise priors, solvers and input errors."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from customvid.errors import CustomvidError
from customvid.sampling import (
    chain_callbacks,
    decode_latents,
    generate,
    make_solver,
    noise_sampler,
    step,
    weight_callback,
)
from customvid.sampling.bench import reference_loop

PROMPT = "a red circle moves left"


def _run(components, small_run, prompts=PROMPT, **kwargs):
    return generate(components, prompts, **{**small_run, **kwargs})


def _unet_batches(components):
    """Records the batch size of every UNet call; returns (list, hook handle)."""
    sizes: list[int] = []
    handle = components.unet.register_forward_pre_hook(lambda module, args: sizes.append(args[0].shape[0]))
    return sizes, handle


def test_output_types_and_shapes(tiny_components, small_run):
    out = _run(tiny_components, small_run, prompts=[PROMPT, "a blue square"])
    assert isinstance(out.frames, np.ndarray) and out.frames.dtype == np.uint8
    assert out.frames.shape == (2, 2, 32, 32, 3) and out.latents.shape == (2, 4, 2, 8, 8)
    assert set(out.timings) == {"encode", "denoise", "decode", "total"}
    assert out.timings["total"] >= out.timings["denoise"] > 0
    pt = _run(tiny_components, small_run, output_type="pt")
    assert pt.frames.shape == (1, 2, 3, 32, 32) and 0 <= pt.frames.min() and pt.frames.max() <= 1
    as_uint8 = (pt.frames * 255).round().byte().permute(0, 1, 3, 4, 2).numpy()
    assert np.abs(as_uint8.astype(int) - out.frames[:1]).max() <= 1  # batch of 2 vs 1: last-bit differences
    latent = _run(tiny_components, small_run, output_type="latent")
    assert latent.frames is None and torch.equal(latent.latents, pt.latents)


def test_model_defaults_are_used(tiny_components):
    components = dataclasses.replace(tiny_components, default_frames=3, default_size=(32, 48))
    out = generate(components, PROMPT, num_inference_steps=1, output_type="latent")
    assert out.latents.shape == (1, 4, 3, 8, 12)


def test_same_seed_same_video_and_different_seed_different_video(tiny_components, small_run):
    a, b = _run(tiny_components, small_run, seed=7), _run(tiny_components, small_run, seed=7)
    np.testing.assert_array_equal(a.frames, b.frames)
    c = _run(tiny_components, small_run, seed=8)
    assert not torch.allclose(a.latents, c.latents)


def test_a_prompt_video_does_not_depend_on_its_batch(tiny_components, small_run):
    both = _run(tiny_components, small_run, prompts=[PROMPT, "a blue square"], seed=3, output_type="latent")
    first = _run(tiny_components, small_run, prompts=PROMPT, seed=3, output_type="latent")
    second = _run(tiny_components, small_run, prompts="a blue square", seed=4, output_type="latent")
    torch.testing.assert_close(both.latents, torch.cat([first.latents, second.latents]), atol=1e-5, rtol=1e-5)
    explicit = _run(tiny_components, small_run, prompts="a blue square", seed=[4], output_type="latent")
    torch.testing.assert_close(explicit.latents, second.latents, atol=0, rtol=0)


@pytest.mark.parametrize(("guidance", "solver"), [(7.5, "ddim"), (1.0, "ddim"), (5.0, "dpm++")])
def test_matches_plain_diffusers_loop(tiny_components, small_run, guidance, solver):
    latents = noise_sampler("iid")((1, 4, 2, 8, 8), torch.Generator().manual_seed(0), torch.float32, "cpu")
    ours = _run(tiny_components, small_run, guidance_scale=guidance, solver=solver, latents=latents)
    plain, _ = reference_loop(tiny_components, PROMPT, latents, 2, guidance, solver)
    assert np.abs(ours.frames.astype(int) - plain.astype(int)).max() <= 1


def test_motion_backbone_matches_plain_loop(tiny_motion_components, small_run):
    latents = noise_sampler("iid")((1, 4, 2, 8, 8), torch.Generator().manual_seed(0), torch.float32, "cpu")
    ours = _run(tiny_motion_components, small_run, latents=latents)
    plain, _ = reference_loop(tiny_motion_components, PROMPT, latents, 2, 7.5)
    assert ours.frames.shape == (1, 2, 32, 32, 3)
    assert np.abs(ours.frames.astype(int) - plain.astype(int)).max() <= 1


def test_guidance_one_runs_the_conditional_branch_only(tiny_components, small_run, fresh_unet):
    components = fresh_unet(tiny_components)
    sizes, handle = _unet_batches(components)
    try:
        cond = _run(components, small_run, guidance_scale=1.0, negative_prompt="blurry")
        assert sizes == [1, 1]
        other_negative = _run(components, small_run, guidance_scale=1.0, negative_prompt="sharp")
        sizes.clear()
        guided = _run(components, small_run, guidance_scale=7.5)
        assert sizes == [2, 2]  # cond + uncond in one call
    finally:
        handle.remove()
    np.testing.assert_array_equal(cond.frames, other_negative.frames)
    assert not torch.allclose(cond.latents, guided.latents)


def test_callback_runs_once_per_step_before_the_unet(tiny_components, small_run):
    seen = []

    def callback(i, t, latents, state):
        seen.append(
            (i, int(t), tuple(latents.shape), state["step"], state["num_steps"], state["guidance_scale"])
        )

    _run(tiny_components, small_run, num_inference_steps=3, callback=callback)
    solver = make_solver("ddim", tiny_components.scheduler.config)
    solver.set_timesteps(3)
    expected_t = [int(t) for t in solver.timesteps]
    assert seen == [(i, expected_t[i], (1, 4, 2, 8, 8), i, 3, 7.5) for i in range(3)]


def test_callback_changes_take_effect(tiny_components, small_run):
    base = _run(tiny_components, small_run, guidance_scale=3.0)
    same = _run(
        tiny_components, small_run, guidance_scale=3.0, callback=lambda i, t, x, s: {"guidance_scale": 3.0}
    )
    torch.testing.assert_close(base.latents, same.latents, atol=0, rtol=0)

    def switch_off_at_step_1(i, t, latents, state):
        if i == 1:
            state["guidance_scale"] = 1.0  # in-place mutation works as well as returning updates

    changed = _run(tiny_components, small_run, guidance_scale=3.0, callback=switch_off_at_step_1)
    assert not torch.allclose(base.latents, changed.latents)
    # switching guidance *on* mid-run encodes the negative prompt lazily
    switched_on = _run(
        tiny_components, small_run, guidance_scale=1.0, callback=lambda i, t, x, s: {"guidance_scale": 3.0}
    )
    torch.testing.assert_close(switched_on.latents, base.latents, atol=0, rtol=0)


def test_callback_can_replace_latents(tiny_components, small_run):
    zeros = torch.zeros(1, 4, 2, 8, 8)
    replaced = _run(
        tiny_components, small_run, callback=lambda i, t, x, s: {"latents": zeros} if i == 0 else None
    )
    direct = _run(tiny_components, small_run, latents=zeros)
    torch.testing.assert_close(replaced.latents, direct.latents, atol=0, rtol=0)


def test_weight_callback_sets_an_adapter_weight_for_each_step(tiny_components, small_run, fresh_unet):
    components = fresh_unet(tiny_components)
    weight = {"value": 1.0}
    seen_by_unet: list[float] = []

    def scaled_output(module, args, output):  # stands in for a LoRA whose scale the callback sets
        seen_by_unet.append(weight["value"])
        return output * weight["value"]

    handle = components.unet.conv_out.register_forward_hook(scaled_output)
    try:
        plain = _run(components, small_run, num_inference_steps=4)
        seen_by_unet.clear()
        dws = weight_callback(step(0.4, 0.8, k=1, of=4), apply=lambda w: weight.update(value=w))
        states = []
        scheduled = _run(
            components,
            small_run,
            num_inference_steps=4,
            callback=chain_callbacks(dws, lambda i, t, x, s: states.append(s["adapter_weight"])),
        )
    finally:
        handle.remove()
    assert seen_by_unet == [0.4, 0.8, 0.8, 0.8] and states == seen_by_unet
    assert not torch.allclose(plain.latents, scheduled.latents)


def test_noise_prior_sets_the_initial_latents(tiny_components, small_run):
    captured = {}
    _run(
        tiny_components,
        small_run,
        noise="ar1:0.9",
        seed=11,
        callback=lambda i, t, x, s: captured.update({i: x}),
    )
    expected = noise_sampler("ar1:0.9")(
        (1, 4, 2, 8, 8), torch.Generator().manual_seed(11), torch.float32, "cpu"
    )
    torch.testing.assert_close(captured[0], expected, atol=0, rtol=0)  # DDIM's init_noise_sigma is 1


def test_solvers_inherit_the_model_scheduler_config(tiny_components):
    ddim = make_solver("ddim", tiny_components.scheduler.config)
    dpm = make_solver("dpm++", tiny_components.scheduler.config)
    assert type(ddim).__name__ == "DDIMScheduler" and not ddim.config.clip_sample
    assert type(dpm).__name__ == "DPMSolverMultistepScheduler" and dpm.config.algorithm_type == "dpmsolver++"
    for solver in (ddim, dpm):
        assert (
            solver.config.prediction_type == "v_prediction" and solver.config.beta_schedule == "scaled_linear"
        )
    eps_config = {**tiny_components.scheduler.config, "prediction_type": "epsilon"}
    assert make_solver("ddim", eps_config).config.prediction_type == "epsilon"


def test_dpm_solver_differs_from_ddim(tiny_components, small_run):
    ddim, dpm = (
        _run(tiny_components, small_run, num_inference_steps=3),
        _run(tiny_components, small_run, num_inference_steps=3, solver="dpm++"),
    )
    assert not torch.allclose(ddim.latents, dpm.latents)


def test_decode_chunking_does_not_change_frames(tiny_components):
    latents = torch.randn(2, 4, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        one, all_at_once = (
            decode_latents(tiny_components.vae, latents, 1),
            decode_latents(tiny_components.vae, latents, 8),
        )
    assert one.shape == (2, 3, 3, 32, 32)
    torch.testing.assert_close(one, all_at_once, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"prompts": []}, "non-empty list of strings"),
        ({"negative_prompt": ["a", "b"]}, "2 negative prompts for 1 prompts"),
        ({"num_inference_steps": 0}, "num_inference_steps must be >= 1"),
        ({"height": 30}, "multiples of 4"),
        ({"num_frames": 0}, "must be positive"),
        ({"output_type": "pil"}, "unknown output_type"),
        ({"solver": "euler"}, "unknown solver 'euler'"),
        ({"noise": "pink"}, "unknown noise"),
        ({"seed": [1, 2]}, "2 seeds/generators for 1 prompts"),
        ({"latents": torch.zeros(1, 4, 3, 8, 8)}, r"latents have shape \[1, 4, 3, 8, 8\]"),
    ],
)
def test_bad_input_is_a_clear_error(tiny_components, small_run, kwargs, message):
    prompts = kwargs.pop("prompts", PROMPT)
    with pytest.raises(CustomvidError, match=message):
        _run(tiny_components, small_run, prompts=prompts, **kwargs)


def test_callback_must_return_a_dict_or_none(tiny_components, small_run):
    with pytest.raises(CustomvidError, match="must return None or a dict, not Tensor"):
        _run(tiny_components, small_run, callback=lambda i, t, x, s: x)


def test_motion_module_frame_limit(tiny_motion_components, small_run):
    with pytest.raises(CustomvidError, match="at most 32 frames"):
        _run(tiny_motion_components, small_run, num_frames=33)
