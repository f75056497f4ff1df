"""A subject adapter trained on an AnimateDiff base loads in diffusers' own AnimateDiffPipeline
(`load_lora_weights` + `load_textual_inversion`) and computes there what it computes here."""

from __future__ import annotations

import torch
from diffusers import AnimateDiffPipeline, MotionAdapter

from customvid.adapters import load_adapter
from customvid.adapters.subject_lora import SubjectLora, SubjectLoraConfig
from customvid.models import load_components


def test_subject_lora_loads_in_animatediff_pipeline(tiny_animatediff_dirs, tmp_path):
    sd_dir, motion_dir = tiny_animatediff_dirs
    components = load_components(sd_dir, motion_adapter=motion_dir)
    adapter = SubjectLora(SubjectLoraConfig(rank=4, alpha=8.0, token="<sks>", class_word="dog")).attach(components)
    with torch.no_grad():  # a trained-looking adapter: B no longer zero
        for p in adapter.trainable_parameters():
            p.add_(torch.randn(p.shape, generator=torch.Generator().manual_seed(p.numel())) * 0.05)
    adapter.save(tmp_path / "a")
    adapter.detach()

    pipe = AnimateDiffPipeline.from_pretrained(sd_dir, motion_adapter=MotionAdapter.from_pretrained(motion_dir))
    pipe.load_lora_weights(tmp_path / "a")  # finds pytorch_lora_weights.safetensors by itself
    pipe.load_textual_inversion(tmp_path / "a" / "learned_embeds.safetensors")

    ours = load_adapter(tmp_path / "a", components, schedule=1.0)
    assert ours.weight == 1.0
    prompt = "a <sks> dog"
    sample = torch.randn(1, 4, 2, 8, 8, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        ids = pipe.tokenizer([prompt], padding="max_length", max_length=77, return_tensors="pt").input_ids
        theirs_text = pipe.text_encoder(ids)[0]
        ours_text = components.encode_prompt([prompt])
        torch.testing.assert_close(theirs_text, ours_text)
        text = ours_text.repeat_interleave(2, 0)
        theirs = pipe.unet(sample, 500, encoder_hidden_states=text).sample
        mine = components.unet(sample, 500, encoder_hidden_states=text).sample
        plain = AnimateDiffPipeline.from_pretrained(sd_dir, motion_adapter=MotionAdapter.from_pretrained(motion_dir))
        base = plain.unet(sample, 500, encoder_hidden_states=text).sample
    torch.testing.assert_close(theirs, mine)
    assert not torch.allclose(theirs, base)  # the LoRA is really in force there


def test_animatediff_adapter_also_has_kohya_keys_for_comfyui(tiny_animatediff_dirs, tmp_path):
    from safetensors.torch import load_file

    sd_dir, motion_dir = tiny_animatediff_dirs
    components = load_components(sd_dir, motion_adapter=motion_dir)
    adapter = SubjectLora(SubjectLoraConfig(rank=4, alpha=8.0, token="<sks>", class_word="dog")).attach(components)
    adapter.save(tmp_path / "a")
    peft_keys = load_file(tmp_path / "a" / "pytorch_lora_weights.safetensors")
    kohya = load_file(tmp_path / "a" / "comfyui_lora.safetensors")
    name = "down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q"
    flat = "lora_unet_" + name.replace(".", "_")
    assert torch.equal(kohya[f"{flat}.lora_down.weight"], peft_keys[f"unet.{name}.lora_A.weight"])
    assert torch.equal(kohya[f"{flat}.lora_up.weight"], peft_keys[f"unet.{name}.lora_B.weight"])
    assert kohya[f"{flat}.alpha"].item() == 8.0
    assert len(kohya) == len(peft_keys) * 3 // 2


def test_motion_lora_loads_in_animatediff_pipeline(tiny_animatediff_dirs, tmp_path):
    from customvid.adapters.motion import MotionAdapter as CustomMotion
    from customvid.adapters.motion import MotionConfig

    sd_dir, motion_dir = tiny_animatediff_dirs
    components = load_components(sd_dir, motion_adapter=motion_dir)
    adapter = CustomMotion(MotionConfig(params="temporal", lora_rank=4, token=None)).attach(components)
    with torch.no_grad():
        for p in adapter.trainable_parameters():
            p.add_(torch.randn(p.shape, generator=torch.Generator().manual_seed(p.numel())) * 0.05)
    adapter.save(tmp_path / "m")
    adapter.detach()
    assert not (tmp_path / "m" / "comfyui_lora.safetensors").exists()  # motion-module keys are not kohya's

    pipe = AnimateDiffPipeline.from_pretrained(sd_dir, motion_adapter=MotionAdapter.from_pretrained(motion_dir))
    pipe.load_lora_weights(tmp_path / "m")
    load_adapter(tmp_path / "m", components, schedule=1.0)
    sample = torch.randn(1, 4, 2, 8, 8, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        text = components.encode_prompt(["a dog"]).repeat_interleave(2, 0)
        theirs = pipe.unet(sample, 500, encoder_hidden_states=text).sample
        mine = components.unet(sample, 500, encoder_hidden_states=text).sample
        plain = AnimateDiffPipeline.from_pretrained(sd_dir, motion_adapter=MotionAdapter.from_pretrained(motion_dir))
        base = plain.unet(sample, 500, encoder_hidden_states=text).sample
    torch.testing.assert_close(theirs, mine)
    assert not torch.allclose(theirs, base)


def _perturbed_tokens(components, num_tokens=4):
    from customvid.adapters.id_tokens import IdTokens, IdTokensConfig

    adapter = IdTokens(IdTokensConfig(token="<sks>", class_word="dog", num_tokens=num_tokens)).attach(components)
    with torch.no_grad():  # trained-looking rows, each its own
        for p in adapter.trainable_parameters():
            p.add_(torch.randn(p.shape, generator=torch.Generator().manual_seed(3)) * 0.1)
    return adapter


def _clip_states(pipe, prompt):
    prompt = pipe.maybe_convert_prompt(prompt, pipe.tokenizer)  # "<sks>" -> "<sks> <sks>_1 ..." (multi-vector)
    ids = pipe.tokenizer([prompt], padding="max_length", max_length=77, return_tensors="pt").input_ids
    return pipe.text_encoder(ids)[0]


def test_id_tokens_load_in_diffusers_textual_inversion_both_layouts(tiny_animatediff_dirs, tmp_path):
    sd_dir, motion_dir = tiny_animatediff_dirs
    components = load_components(sd_dir, motion_adapter=motion_dir)
    adapter = _perturbed_tokens(components)
    adapter.save(tmp_path / "t", a1111=True)
    prompt = "a <sks> dog running"
    with torch.no_grad():
        ours = components.encode_prompt([prompt])
        plain = components.encode_prompt(["a dog dog dog dog dog running"])
        for file, kwargs in (("learned_embeds.safetensors", {}), ("sks.pt", {"token": "<sks>"})):
            pipe = AnimateDiffPipeline.from_pretrained(sd_dir, motion_adapter=MotionAdapter.from_pretrained(motion_dir))
            pipe.load_textual_inversion(tmp_path / "t" / file, **kwargs)
            torch.testing.assert_close(_clip_states(pipe, prompt), ours)
    assert not torch.allclose(ours, plain)  # the rows are really in force


def test_id_tokens_train_through_a_clip_text_encoder(tiny_animatediff_dirs, tmp_path):
    import numpy as np
    from PIL import Image

    from customvid.adapters import read_adapter
    from customvid.training.subject import subject_config, train_subject

    sd_dir, motion_dir = tiny_animatediff_dirs
    components = load_components(sd_dir, motion_adapter=motion_dir)
    photos = tmp_path / "photos"
    photos.mkdir()
    for i in range(2):
        image = np.full((32, 32, 3), 30, np.uint8)
        image[8:24, 8 + i : 24 + i] = 220
        Image.fromarray(image).save(photos / f"p{i}.png")
    unet_before = {k: v.clone() for k, v in components.unet.state_dict().items()}
    text_before = {k: v.clone() for k, v in components.text_encoder.state_dict().items()}
    cfg = subject_config("tokens", "dog", loop={"steps": 3, "sample_every": 0, "batch_size": 2})
    train_subject(components, photos, tmp_path / "t", cfg, progress=False).detach()
    rows = read_adapter(tmp_path / "t").tokens["<sks>"]
    start = components.text_encoder.get_input_embeddings().weight[
        components.tokenizer("dog", add_special_tokens=False)["input_ids"]].mean(0)
    assert rows.shape == (4, start.shape[0]) and not torch.allclose(rows, start.expand_as(rows))
    assert all(torch.equal(v, unet_before[k]) for k, v in components.unet.state_dict().items())
    assert all(torch.equal(v, text_before[k]) for k, v in components.text_encoder.state_dict().items())
