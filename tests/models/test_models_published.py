"""Structural tests at the published full sizes (random weights, built from configs; see conftest.py):
ModelScope T2V 1.7B and SD1.5 + AnimateDiff v1-5-2 load through `load_components`, their layer maps have the
published shape, and `generate` runs on them at a tiny resolution.

Slow (a few minutes on 2 CPU cores, mostly building, saving and loading ~1.4B + ~1.3B parameters) but part
of the CI run. Each test frees its model before the next one is built.
"""

from __future__ import annotations

import gc

import pytest
import torch

from customvid.models import (
    cross_attention_kv_layers,
    load_components,
    spatial_attention_layers,
    temporal_parameters,
    temporal_roots,
)
from customvid.sampling import generate

pytestmark = pytest.mark.slow
TINY_RUN = {"num_frames": 2, "height": 64, "width": 64, "num_inference_steps": 2}


def _params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def _check_generates(components) -> None:
    out = generate(components, ["a corgi running on the beach"], seed=0, **TINY_RUN)
    assert out.frames.shape == (1, 2, 64, 64, 3) and out.frames.dtype.name == "uint8"
    assert torch.isfinite(out.latents).all()


def _check_zeroshot(components) -> None:
    """DreamVideo-2's modules attach to the published layout (ControlNet copy of its down path, reference attention
    in every spatial transformer), run under both conditions, and start as the unchanged model."""
    from customvid.adapters.zeroshot import ZeroShotAdapter, ZeroShotConfig

    plain = generate(components, ["a corgi running on the beach"], seed=0, **TINY_RUN).latents
    adapter = ZeroShotAdapter(ZeroShotConfig()).attach(components)
    try:
        assert len(adapter.net.reference) == 16
        image = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(0))
        adapter.set_condition(subject=image, boxes=[[4, 4, 40, 40], [20, 16, 60, 56]], video_size=(64, 64))
        out = generate(components, ["a corgi running on the beach"], seed=0, adapters=[adapter], **TINY_RUN).latents
        assert torch.equal(out, plain)  # zero-initialised outputs: exactly the base model until trained
    finally:
        adapter.detach()
        del adapter
        gc.collect()


def test_modelscope_full_size(modelscope_full_dir):
    components = load_components(modelscope_full_dir)
    try:
        unet = components.unet
        assert (components.kind, components.text_kind, components.max_length) == ("unet3d", "clip", 77)
        assert (components.default_frames, components.default_size) == (16, (256, 256))
        assert unet.dtype == torch.float32  # saved as fp16, loaded in the requested dtype
        assert 1.40e9 < _params(unet) < 1.42e9  # text-to-video-ms-1.7b UNet: 1.41B
        # 16 spatial transformers (3 down blocks x 2, mid 1, 3 up blocks x 3), 4 attention projections x 2
        assert len(spatial_attention_layers(unet)) == 16 * 8
        kv = cross_attention_kv_layers(unet)
        assert len(kv) == 32 and all(unet.get_submodule(n).in_features == 1024 for n in kv)
        roots = temporal_roots(unet)
        assert roots[0] == "transformer_in" and sum(".temp_attentions." in r for r in roots) == 16
        assert components.encode_prompt(["x"]).shape == (1, 77, 1024)
        _check_generates(components)
        _check_zeroshot(components)
    finally:
        del components
        gc.collect()


def test_animatediff_full_size(animatediff_full_dirs):
    sd, adapter = animatediff_full_dirs
    components = load_components(sd, motion_adapter=adapter)
    try:
        unet = components.unet
        assert (components.kind, components.text_kind) == ("unet_motion", "clip")
        assert (components.default_frames, components.default_size) == (16, (512, 512))
        assert components.scheduler.config.beta_schedule == "linear"
        assert unet.config.motion_max_seq_length == 32 and unet.config.use_motion_mid_block
        # SD1.5 UNet 860M + motion modules v1-5-2 453M
        assert 1.30e9 < _params(unet) < 1.33e9
        assert len(spatial_attention_layers(unet)) == 16 * 8
        assert len(cross_attention_kv_layers(unet)) == 32
        # 2 motion modules per down block, 3 per up block, 1 in the mid block
        assert len(temporal_roots(unet)) == 4 * 2 + 4 * 3 + 1
        assert 4.50e8 < sum(unet.get_parameter(n).numel() for n in temporal_parameters(unet)) < 4.56e8
        _check_generates(components)
        _check_zeroshot(components)
    finally:
        del components
        gc.collect()
