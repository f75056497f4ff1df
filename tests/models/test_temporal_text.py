"""The text-temporal UNet variant: starts identical, keeps the stock weight names, saves so that a stock loader
fails loudly, and loads back exactly through customvid's loader."""

from __future__ import annotations

import copy

import pytest
import torch
from diffusers import UNet3DConditionModel

from customvid.models import load_components, save_embedded
from customvid.models.temporal_text import (
    VARIANT,
    FrameTimeUNet3DConditionModel,
    TextTemporalUNet3DConditionModel,
    frame_embedding,
)

CLASSES = pytest.mark.parametrize("cls", [TextTemporalUNet3DConditionModel, FrameTimeUNet3DConditionModel])


def _inputs():
    g = torch.Generator().manual_seed(0)
    return torch.randn(2, 4, 3, 8, 8, generator=g), torch.tensor([900, 50]), torch.randn(2, 32, 384, generator=g)


@CLASSES
def test_converted_model_computes_exactly_the_stock_model(tiny_components, cls):
    stock = tiny_components.unet
    model = cls.from_unet3d(stock).eval()
    x, t, text = _inputs()
    with torch.no_grad():
        assert torch.equal(model(x, t, text).sample, stock(x, t, text).sample)
    stock_keys = set(stock.state_dict())
    new_keys = set(model.state_dict()) - stock_keys
    assert stock_keys <= set(model.state_dict())
    assert new_keys and all(".proj_in.text_attn." in k or k.startswith("frame_time.") for k in new_keys)
    assert any(k.startswith("frame_time.") for k in new_keys) == (cls is FrameTimeUNet3DConditionModel)
    assert {id(p) for p in model.text_temporal_parameters()} == {
        id(p) for n, p in model.named_parameters() if n in new_keys
    }


def test_text_path_reads_the_caption_and_the_frame(tiny_components):
    model = TextTemporalUNet3DConditionModel.from_unet3d(tiny_components.unet).eval()
    with torch.no_grad():
        for p in model.text_temporal_parameters():
            p.add_(torch.randn(p.shape, generator=torch.Generator().manual_seed(p.numel())) * 0.1)
    x, t, text = _inputs()
    with torch.no_grad():
        a = model(x, t, text).sample
        b = model(x, t, text.flip(0)).sample
    assert not torch.allclose(a, b)
    emb = frame_embedding(4, 8)
    assert emb.shape == (4, 8) and not torch.equal(emb[0], emb[1])


@CLASSES
def test_save_load_and_stock_loader_fails_loudly(tiny_components, tmp_path, cls):
    model = cls.from_unet3d(tiny_components.unet).eval()
    with torch.no_grad():
        for p in model.text_temporal_parameters():
            p.add_(0.01)
    components = copy.copy(tiny_components)
    components.unet = model
    folder = save_embedded(components, tmp_path / "m")
    assert (folder / "unet" / f"diffusion_pytorch_model.{VARIANT}.safetensors").is_file()
    with pytest.raises(OSError):
        UNet3DConditionModel.from_pretrained(folder / "unet", use_safetensors=True)
    loaded = load_components(folder)
    assert type(loaded.unet) is cls and loaded.kind == "unet3d"
    x, t, text = _inputs()
    with torch.no_grad():
        assert torch.equal(loaded.unet(x, t, text).sample, model(x, t, text).sample)


def test_deepcopy_keeps_its_own_text_context(tiny_components):
    model = TextTemporalUNet3DConditionModel.from_unet3d(tiny_components.unet)
    twin = copy.deepcopy(model)
    assert twin._text_context is not model._text_context
    assert twin.transformer_in.proj_in.context is twin._text_context


def test_frame_time_tells_the_frames_apart(tiny_components):
    """Once the frame-time layer is non-zero, each frame gets its own row and the output changes by a different
    amount in each frame; the layer receives gradients and trains at the new layers' rate."""
    model = FrameTimeUNet3DConditionModel.from_unet3d(tiny_components.unet).eval()
    x, t, text = _inputs()
    with torch.no_grad():
        before = model(x, t, text).sample
        w = model.frame_time.weight
        w.add_(torch.randn(w.shape, generator=torch.Generator().manual_seed(0)))
        rows = model.frame_time(frame_embedding(x.shape[2], w.shape[1]))
        assert not torch.allclose(rows[0], rows[1])  # each frame gets its own row
        after = model(x, t, text).sample
    change = (after - before).abs().mean(dim=(0, 1, 3, 4))
    assert (change > 0).all() and not torch.allclose(change, change[0].expand_as(change))
    model.frame_time.weight.grad = None
    model(x, t, text).sample.square().mean().backward()
    assert model.frame_time.weight.grad.abs().sum() > 0
    assert {id(model.frame_time.weight), id(model.frame_time.bias)} <= {id(p) for p in model.text_temporal_parameters()}
