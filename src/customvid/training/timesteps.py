"""Training timestep samplers.

`biased(k)`: t = floor(T * (1 - u^k)), u ~ U(0, 1). k = 1 is uniform; k > 1 skews toward high noise, where a
clip's layout and motion are decided (Customizing Motion in T2V trains its motion there; the exact formula was
not published, METHODS.md section 4). P(t >= T * (1 - q)) = q^(1/k): with k = 3, 58 % of draws fall in the top
20 % of noise levels instead of 20 %; the mean is T * k / (k + 1).
"""

from __future__ import annotations

import torch

from customvid.errors import CustomvidError


def sample_timesteps(n: int, num_train: int, generator: torch.Generator, bias: float = 1.0) -> torch.Tensor:
    if bias <= 0:
        raise CustomvidError(f"timestep bias must be > 0, got {bias}")
    if bias == 1.0:
        return torch.randint(0, num_train, (n,), generator=generator)
    u = torch.rand(n, generator=generator, dtype=torch.float64)
    return (num_train * (1 - u**bias)).floor().long().clamp(0, num_train - 1)
