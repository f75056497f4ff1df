"""Stable targets for the noisiest training steps (Xu, Tong & Jaakkola, "Stable Target Field for Reduced Variance
Score Estimation in Diffusion Models", ICLR 2023).

At high noise the clean clip behind x_t is any of the many clips its caption allows, so the usual v-target, built
from the one clip that happened to be drawn, is mostly noise about where that clip's subject sits. The stable
target builds it from a posterior-weighted average over a reference batch instead: the own clip plus clips *with
the same caption* (same subject, motion and background; new size, speed and placement), weights
w_k ~ N(x_t; alpha x0_k, sigma^2 I). At low noise the weights collapse onto the own clip (the usual target); at the
top of the schedule, where sampling starts and the caption has to decide layout and direction, they tend to the
caption's mean clip, which is what the optimal model predicts there: the same minimiser, a fraction of the variance.
Why here: a 2 % share of uniform timesteps lies in that regime (t >= 975 on our cosine schedule), each with a
one-clip target, and the shipped model's prediction there ignores the caption's direction (BENCHMARKS.md).
"""

from __future__ import annotations

import torch


def stable_x0(noisy: torch.Tensor, own: torch.Tensor, refs: torch.Tensor, alpha_bar: torch.Tensor) -> torch.Tensor:
    """The posterior-weighted clean sample for one noisy sample: noisy, own [C, F, h, w], refs [M, C, F, h, w]."""
    x0 = torch.cat([own[None], refs]).double()
    a, s2 = alpha_bar.double().sqrt(), (1 - alpha_bar.double())
    log_w = -(noisy.double()[None] - a * x0).square().flatten(1).sum(1) / (2 * s2)
    w = torch.softmax(log_w, 0)
    return torch.einsum("k,k...->...", w, x0).to(own.dtype)


def stable_velocity_shift(own: torch.Tensor, x0: torch.Tensor, alpha_bar: torch.Tensor) -> torch.Tensor:
    """What to add to the usual v-target (from `own`) so that it is the v-target of `x0` at the same x_t:
    with x_t = a x0 + s eps, v = a eps - s x0 = (a x_t - x0) / s."""
    return (own - x0) / (1 - alpha_bar).sqrt()
