"""Noise priors: unit variance, the published frame correlations, seeding, and the name registry."""

from __future__ import annotations

import pytest
import torch

from customvid.errors import CustomvidError
from customvid.sampling.noise import NOISE_SAMPLERS, ar1, iid, mixed, noise_sampler

# 4 x 4 x 6 x 32 x 32 = 98k values per frame pair: correlation estimates have standard error ~0.003.
SHAPE = (4, 4, 6, 32, 32)
TOL = 0.02


def _draw(sampler, seed: int = 0, shape=SHAPE) -> torch.Tensor:
    return sampler(shape, torch.Generator().manual_seed(seed), torch.float32, "cpu")


def _frame_corr(z: torch.Tensor) -> torch.Tensor:
    """Empirical correlation matrix between frames, over batch, channels and pixels."""
    frames = z.transpose(0, 2).reshape(z.shape[2], -1)
    return torch.corrcoef(frames)


@pytest.mark.parametrize(
    "sampler", [iid, ar1(0.15), ar1(0.9), mixed(0.5)], ids=["iid", "ar1-0.15", "ar1-0.9", "mixed"]
)
def test_unit_variance_and_zero_mean_per_frame(sampler):
    z = _draw(sampler)
    assert z.shape == SHAPE and z.dtype == torch.float32
    per_frame = z.transpose(0, 2).reshape(SHAPE[2], -1)
    assert torch.allclose(per_frame.var(dim=1), torch.ones(SHAPE[2]), atol=TOL * 2)
    assert per_frame.mean(dim=1).abs().max() < TOL


@pytest.mark.parametrize("gamma", [0.0, 0.15, 0.5, 0.9])
def test_ar1_correlation_is_gamma_to_the_frame_distance(gamma):
    corr = _frame_corr(_draw(ar1(gamma)))
    m = torch.arange(SHAPE[2])
    expected = gamma ** (m[:, None] - m[None, :]).abs().double()
    torch.testing.assert_close(corr.double(), expected, atol=TOL, rtol=0)


def test_ar1_follows_the_recursion_from_the_same_draws():
    gamma, gen = 0.3, torch.Generator().manual_seed(5)
    eps = torch.randn(SHAPE, generator=gen)
    z = _draw(ar1(gamma), seed=5)
    torch.testing.assert_close(z[:, :, 0], eps[:, :, 0])  # z_0 = e_0
    for f in range(1, SHAPE[2]):
        torch.testing.assert_close(z[:, :, f], gamma * z[:, :, f - 1] + (1 - gamma**2) ** 0.5 * eps[:, :, f])


def test_ar1_gamma_one_repeats_the_first_frame():
    z = _draw(ar1(1.0))
    assert torch.equal(z[:, :, 0], z[:, :, -1])


def test_mixed_correlation_is_alpha_between_any_frames():
    alpha = 0.4
    corr = _frame_corr(_draw(mixed(alpha)))
    expected = torch.full_like(corr, alpha).fill_diagonal_(1.0)
    torch.testing.assert_close(corr, expected, atol=TOL, rtol=0)


def test_channels_and_pixels_stay_independent():
    z = _draw(ar1(0.9))
    a, b = z[:, 0].flatten(), z[:, 1].flatten()
    assert torch.corrcoef(torch.stack([a, b]))[0, 1].abs() < TOL


@pytest.mark.parametrize("spec", ["iid", "ar1:0.15", "mixed:0.5"])
def test_seeding(spec):
    sampler = noise_sampler(spec)
    assert torch.equal(_draw(sampler, 1), _draw(sampler, 1))
    assert not torch.allclose(_draw(sampler, 1), _draw(sampler, 2))


def test_dtype_and_device_do_not_change_the_draw():
    z32 = _draw(ar1(0.2))
    z16 = ar1(0.2)(SHAPE, torch.Generator().manual_seed(0), torch.float16, torch.device("cpu"))
    assert z16.dtype == torch.float16
    torch.testing.assert_close(z16.float(), z32, atol=2e-3, rtol=1e-3)


def test_registry_parses_names_and_parameters():
    assert set(NOISE_SAMPLERS) == {"iid", "ar1", "mixed"}
    assert noise_sampler("iid") is iid
    assert torch.equal(_draw(noise_sampler("AR1:0.15")), _draw(ar1(0.15)))
    assert torch.equal(_draw(noise_sampler("ar1")), _draw(ar1(0.15)))  # published node-workflow default
    custom = lambda shape, generator, dtype, device: torch.zeros(shape, dtype=dtype)  # noqa: E731
    assert noise_sampler(custom) is custom


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("pink", "unknown noise 'pink'"),
        ("ar1:x", "must be comma-separated numbers"),
        ("ar1:1.5", "0 <= gamma <= 1"),
        ("mixed:-0.1", "0 <= alpha <= 1"),
        ("iid:0.3", "wrong number of parameters"),
        (":0.3", "missing name"),
    ],
)
def test_bad_specs_are_clear_errors(spec, message):
    with pytest.raises(CustomvidError, match=message):
        noise_sampler(spec)


def test_latent_shape_is_required():
    with pytest.raises(CustomvidError, match=r"\[B, C, F, H, W\]"):
        iid((4, 8, 8), None, torch.float32, "cpu")
