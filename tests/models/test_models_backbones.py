"""Layer selectors of both backbones find exactly the layers METHODS.md section 0 names, checked
independently: by module type, by input width, by the motion adapter's own parameter list, and by behaviour
(frames only interact through the temporal layers)."""

from __future__ import annotations

import copy
import re

import pytest
import torch
from diffusers.models.transformers.transformer_2d import Transformer2DModel
from peft import LoraConfig, inject_adapter_in_model
from torch import nn

from customvid.errors import CustomvidError
from customvid.models import (
    CROSS_ATTENTION_KV,
    UNET3D_TEMPORAL_CONVS,
    backbone_spec,
    cross_attention_kv_layers,
    find_modules,
    merge_motion_unet,
    spatial_attention_layers,
    spatial_attention_regex,
    temporal_layers,
    temporal_parameters,
    temporal_roots,
    unet_forward,
)
from customvid.models import tiny as tiny_models

ODD_TEXT_DIM = 24  # no other Linear in the tiny UNets has this input width


@pytest.fixture(scope="module", params=["unet3d", "unet_motion"])
def unet(request) -> nn.Module:
    build = {"unet3d": tiny_models.tiny_unet3d, "unet_motion": tiny_models.tiny_unet_motion}[request.param]
    return build(cross_attention_dim=ODD_TEXT_DIM).eval()


def test_spatial_attention_layers_are_the_projections_of_spatial_transformers(unet):
    expected = {
        f"{name}.transformer_blocks.{j}.{attn}.{proj}"
        for name, module in unet.named_modules()
        if isinstance(module, Transformer2DModel)  # spatial; temporal ones are other classes
        for j in range(len(module.transformer_blocks))
        for attn in ("attn1", "attn2")
        for proj in ("to_q", "to_k", "to_v", "to_out.0")
    }
    found = spatial_attention_layers(unet)
    assert len(found) == len(set(found)) and set(found) == expected
    assert len(expected) == 8 * 4  # tiny configs: 4 spatial transformer blocks x 2 attentions x 4 projections
    assert not any("temp_" in n or "motion_modules" in n or n.startswith("transformer_in") for n in found)
    only_q = spatial_attention_layers(unet, attentions=("attn1",), projections=("q",))
    assert set(only_q) == {n for n in expected if n.endswith("attn1.to_q")}


def test_cross_attention_kv_are_exactly_the_layers_that_read_text(unet):
    reads_text = {
        n for n, m in unet.named_modules() if isinstance(m, nn.Linear) and m.in_features == ODD_TEXT_DIM
    }
    found = cross_attention_kv_layers(unet)
    assert set(found) == reads_text and len(found) == 8
    assert all(re.fullmatch(CROSS_ATTENTION_KV, n) for n in found)


def test_temporal_and_spatial_selections_do_not_overlap(unet):
    temporal = set(temporal_parameters(unet))
    spatial = {f"{n}.{p}" for n in spatial_attention_layers(unet) for p in ("weight", "bias")}
    assert temporal and not temporal & spatial
    assert set(temporal_layers(unet)) <= {n for n, _ in unet.named_modules()}
    assert all(isinstance(unet.get_submodule(n), nn.Linear | nn.Conv3d) for n in temporal_layers(unet))


def test_unet3d_temporal_layers_match_methods_names():
    unet = tiny_models.tiny_unet3d()
    roots = temporal_roots(unet)
    assert roots[0] == "transformer_in"
    assert {re.sub(r"\.\d+$", "", r).split(".")[-1] for r in roots[1:]} == {"temp_convs", "temp_attentions"}
    convs = [n for n in temporal_layers(unet) if isinstance(unet.get_submodule(n), nn.Conv3d)]
    # METHODS.md writes conv{1..4}.2; in diffusers conv2-4 have a Dropout at index 2, so their conv is at .3.
    assert convs and all(re.fullmatch(UNET3D_TEMPORAL_CONVS, n) for n in convs)
    assert set(find_modules(unet, UNET3D_TEMPORAL_CONVS)) == set(convs)
    assert len(convs) == 4 * len([r for r in roots if ".temp_convs." in r])


def test_motion_temporal_parameters_are_exactly_the_motion_adapter():
    adapter = tiny_models.tiny_motion_adapter()
    unet = merge_motion_unet(tiny_models.tiny_unet2d(), adapter)
    assert set(temporal_parameters(unet)) == {n for n, _ in adapter.named_parameters()}


def _set_temporal_outputs(unet: nn.Module, zero: bool) -> None:
    # Every temporal block is residual (x + f(x)): zeroing its last projection makes it the identity.
    # diffusers zero-initialises the temporal convs' last conv, so the test first gives those random weights.
    for root in temporal_roots(unet):
        for name, param in unet.get_submodule(root).named_parameters():
            if name.startswith(("proj_out.", "conv4.")):
                param.data.zero_() if zero else param.data.normal_(
                    0.0, 0.05, generator=torch.Generator().manual_seed(1)
                )


@torch.no_grad()
def test_frames_interact_only_through_temporal_layers(unet):
    unet = copy.deepcopy(unet)
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(1, 4, 3, 8, 8, generator=gen)
    text = torch.randn(1, 5, ODD_TEXT_DIM, generator=gen)
    x_changed = x.clone()
    x_changed[:, :, 2] += 1.0  # change the last frame only

    def frame0(sample):
        return unet_forward(unet, sample, torch.tensor(500), text)[:, :, 0]

    _set_temporal_outputs(unet, zero=False)
    assert not torch.allclose(frame0(x), frame0(x_changed), atol=1e-4)
    _set_temporal_outputs(unet, zero=True)
    torch.testing.assert_close(frame0(x), frame0(x_changed), atol=1e-5, rtol=0)


def test_regex_works_as_peft_target(unet):
    model = inject_adapter_in_model(
        LoraConfig(r=2, target_modules=spatial_attention_regex()), copy.deepcopy(unet)
    )
    lora = {n.removesuffix(".lora_A") for n, _ in model.named_modules() if n.endswith(".lora_A")}
    assert lora == set(spatial_attention_layers(unet))


@torch.no_grad()
def test_unet_forward_repeats_text_per_frame_only_for_motion_unet():
    unet = tiny_models.tiny_unet_motion()
    x, text = torch.randn(2, 4, 3, 8, 8), torch.randn(2, 5, 384)
    direct = unet(x, 10, encoder_hidden_states=text.repeat_interleave(3, dim=0)).sample
    torch.testing.assert_close(unet_forward(unet, x, 10, text), direct)
    assert backbone_spec(unet).text_per_frame and not backbone_spec("unet3d").text_per_frame


def test_unsupported_backbone_is_a_clear_error():
    with pytest.raises(CustomvidError, match="unsupported video backbone 'UNet2DConditionModel'"):
        spatial_attention_layers(tiny_models.tiny_unet2d())
    with pytest.raises(CustomvidError, match="unknown projection"):
        spatial_attention_regex(projections=("query",))
