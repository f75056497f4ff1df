"""Recipe parts of train-base added for the motion-direction work: subject-weighted loss, biased timesteps."""

from __future__ import annotations

import pytest
import torch

from customvid.errors import CustomvidError
from customvid.training.base import subject_loss_weight
from customvid.training.timesteps import sample_timesteps


def test_subject_weight_marks_the_subject_cells():
    masks = torch.zeros(1, 2, 64, 64, dtype=torch.bool)
    masks[0, 0, 30:34, 30:34] = True
    w = subject_loss_weight(masks, 16, 4.0)
    assert w.shape == (1, 1, 2, 16, 16)
    assert w[0, 0, 0, 7, 7] == 4.0 and w[0, 0, 0, 6, 6] == 4.0  # the cell and its dilation
    assert w[0, 0, 0, 0, 0] == 1.0 and (w[0, 0, 1] == 1.0).all()


def test_timestep_bias():
    g = torch.Generator().manual_seed(0)
    uniform = sample_timesteps(20000, 1000, g, 1.0).float()
    biased = sample_timesteps(20000, 1000, g, 3.0).float()
    assert abs(uniform.mean().item() - 499.5) < 10
    assert abs(biased.mean().item() - 750) < 10  # T * k / (k + 1)
    assert biased.min() >= 0 and biased.max() <= 999
    assert abs((biased >= 800).float().mean().item() - 0.2 ** (1 / 3)) < 0.02
    with pytest.raises(CustomvidError):
        sample_timesteps(1, 1000, g, 0.0)


def test_same_caption_specs_keep_the_meaning_and_vary_the_rest():
    from customvid.training.data import clip_batch, render_clips, same_caption_specs
    from customvid.world import sample_spec

    own = sample_spec("train", 3 * 4 + 1, 0, frames=4, width=32, height=32)
    specs = same_caption_specs(3, 1, 4, 0, 4, 32, 3)
    assert all((s.subject, s.motion, s.background) == (own.subject, own.motion, own.background) for s in specs)
    assert len({s.offset for s in specs} | {own.offset}) == 4
    clips = render_clips(specs)
    assert clips.shape == (3, 3, 4, 32, 32)
    assert torch.equal(clips, render_clips(same_caption_specs(3, 1, 4, 0, 4, 32, 3)))
    assert not torch.equal(clips[0], clip_batch(3, 4, 0, 4, 32)[0][1])


def test_stable_target_is_the_own_clip_at_low_noise_and_the_mean_at_the_top():
    from diffusers import DDPMScheduler

    from customvid.training.base import scheduler_config
    from customvid.training.stable_target import stable_velocity_shift, stable_x0

    sched = DDPMScheduler(**scheduler_config())
    g = torch.Generator().manual_seed(0)
    own, refs, eps = torch.randn(4, 2, 8, 8, generator=g), torch.randn(5, 4, 2, 8, 8, generator=g), torch.randn(
        4, 2, 8, 8, generator=g
    )
    for t, expected, tol in ((100, own, 1e-5), (999, torch.cat([own[None], refs]).mean(0), 1e-2)):
        a = sched.alphas_cumprod[t]
        noisy = sched.add_noise(own, eps, torch.tensor(t))
        x0 = stable_x0(noisy, own, refs, a)
        torch.testing.assert_close(x0, expected, atol=tol, rtol=0)
        # the shifted target is the v-target of x0 at the same noisy sample
        v = sched.get_velocity(own, eps, torch.tensor(t)) + stable_velocity_shift(own, x0, a)
        eps0 = (noisy - a.sqrt() * x0) / (1 - a).sqrt()
        torch.testing.assert_close(v, sched.get_velocity(x0, eps0, torch.tensor(t)), atol=1e-4, rtol=1e-4)
    # in between, the weights favour the reference nearest the noisy sample
    a = sched.alphas_cumprod[900]
    noisy = a.sqrt() * refs[2] + (1 - a).sqrt() * 0.01 * eps
    assert (stable_x0(noisy, own, refs, a) - refs[2]).abs().max() < 1e-3


def test_adapter_lr_schedules():
    import argparse
    import math

    from customvid.cli.adapter_training import add_loop_args, loop_config
    from customvid.training.adapter_loop import LoopConfig, _lr_factor, train_loop

    cosine = LoopConfig(steps=110, warmup=10, lr_schedule="cosine")
    factors = [_lr_factor(s, cosine) for s in range(111)]
    assert factors[0] == pytest.approx(0.1) and factors[9] == 1.0  # warm-up as before
    assert factors[10] == 1.0 and factors[60] == pytest.approx(0.55) and factors[110] == pytest.approx(0.1)
    assert all(a >= b for a, b in zip(factors[10:-1], factors[11:], strict=True))  # decays monotonically after warm-up
    assert math.isclose(_lr_factor(500, cosine), 0.1)  # past the end: the floor
    assert {_lr_factor(s, LoopConfig(steps=110, warmup=10)) for s in range(10, 111)} == {1.0}  # the default
    p = argparse.ArgumentParser()
    add_loop_args(p, lr=1e-4, steps=10, batch=2, batch_help="clips")
    assert loop_config(p.parse_args(["--lr-schedule", "cosine"])).lr_schedule == "cosine"
    assert loop_config(p.parse_args([])).lr_schedule == "constant"
    with pytest.raises(CustomvidError, match="unknown lr schedule"):
        train_loop("unused", None, [], None, LoopConfig(lr_schedule="linear"))
