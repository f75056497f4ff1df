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
