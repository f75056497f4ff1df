"""Shared fixtures: tiny random-weight components (built from configs, never downloaded) and a saved copy.

Session-scoped objects are shared by many tests: a test that changes weights or registers hooks must work on a
copy (`fresh_unet`) or undo its change.
"""

from __future__ import annotations

import copy
import dataclasses
import os
from pathlib import Path

import pytest
import torch

from customvid.models import Components, save_embedded
from customvid.models import tiny as tiny_models

# One intra-op thread unless told otherwise: on a CPU shared with other jobs, torch's default (all cores)
# spins OpenMP workers against them and a tiny UNet call went from 0.07 s to 7 s; on an idle 2-core CI
# machine one thread costs at most 2x. Set CUSTOMVID_TEST_THREADS to override.
torch.set_num_threads(int(os.environ.get("CUSTOMVID_TEST_THREADS", "1")))

# Keep default test runs cheap: 2 frames of 32x32 px (8x8 latents), 2 denoising steps.
SMALL_RUN = {"num_frames": 2, "height": 32, "width": 32, "num_inference_steps": 2}


@pytest.fixture(scope="session")
def tiny_components() -> Components:
    """Tiny UNet3DConditionModel (cross-attention 384) + tiny AutoencoderKL (64 px -> 16x16x4) + v-prediction
    DDPM config + the real MiniLM text encoder."""
    return tiny_models.tiny_components("unet3d")


@pytest.fixture(scope="session")
def tiny_frame_time_components() -> Components:
    """The same in the frame-time architecture of the embedded model (caption cross-attention in the temporal
    transformers, frame index in the time embedding; new layers non-zero)."""
    return tiny_models.tiny_components("unet3d_frame_time")


@pytest.fixture(scope="session")
def tiny_motion_components() -> Components:
    """The same with a tiny SD-style UNet + MotionAdapter merged into a UNetMotionModel."""
    return tiny_models.tiny_components("unet_motion")


@pytest.fixture(scope="session")
def tiny_model_dir(tiny_components: Components, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`tiny_components` saved in the embedded-model layout (what `customvid train-base` writes)."""
    return save_embedded(tiny_components, tmp_path_factory.mktemp("models") / "tiny", extra={"note": "test"})


@pytest.fixture
def small_run() -> dict:
    return dict(SMALL_RUN)


@pytest.fixture
def fresh_unet():
    """fresh_unet(components) -> a copy of `components` with its own UNet, safe to modify or hook."""

    def make(components: Components) -> Components:
        return dataclasses.replace(components, unet=copy.deepcopy(components.unet))

    return make
