"""DreamVideo-2's zero-shot adapter: masked reference attention, the motion module, the reweighted loss, training and
the CLI, on the tiny random-weight models (the adapter matrix covers save/load/freeze/zero-init on both backbones)."""

from __future__ import annotations

import copy
import dataclasses
import json
import re

import numpy as np
import pytest
import torch

import customvid.models
from customvid.adapters.zeroshot import ZeroShotAdapter, ZeroShotConfig
from customvid.adapters.zeroshot.layers import BoxEncoder, spatial_attention_blocks
from customvid.cli import main
from customvid.errors import CustomvidError
from customvid.io import write_image
from customvid.io.boxes import box_masks
from customvid.models.backbones import unet_forward
from customvid.sampling import generate
from customvid.world import render_clip, spec_from_caption

BOXES = [[2, 2, 18, 18], [12, 10, 30, 28]]  # 2 frames of a 32 px video


@pytest.fixture
def model(tiny_components, fresh_unet):
    return dataclasses.replace(fresh_unet(tiny_components), adapters=[], token_pieces={})


def _randomise(adapter, scale=0.05, seed=0):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in adapter.net.parameters():
            p.add_(scale * torch.randn(p.shape, generator=g))


def _subject(seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(1, 3, 32, 32, generator=g)


def test_box_masks_are_area_fractions_on_any_grid():
    m = box_masks(np.array([[8, 16, 40, 33.0], [np.nan] * 4]), (64, 64), (16, 16))
    assert m.shape == (2, 16, 16)
    assert m[0].sum() * 16 == pytest.approx(32 * 17)  # the box's pixel area, in 4x4-pixel cells
    assert m[0, 4, 2] == 1 and m[0, 8, 2] == 0.25 and m[0, 3, 2] == 0  # rows 16..32 full, 32..33 a quarter
    assert not m[1].any()  # a frame without its subject: empty


def test_reference_pass_runs_once_per_generation(model):
    adapter = ZeroShotAdapter(ZeroShotConfig(motion=False)).attach(model)
    frames_seen = []
    hook = model.unet.register_forward_pre_hook(lambda m, args: frames_seen.append(args[0].shape[2]))
    adapter.set_condition(subject=_subject(), video_size=(32, 32))
    assert frames_seen == [1]  # the one-frame reference pass
    assert set(adapter._ref) == set(spatial_attention_blocks(model.unet))
    generate(model, "a red circle", num_frames=2, height=32, width=32, num_inference_steps=3, output_type="latent",
             adapters=[adapter])
    hook.remove()
    assert frames_seen == [1, 2, 2, 2]  # no reference pass per step


def _hook_delta(adapter, model, mode_cfg):
    """What the reference attention adds at the first spatial block for a 2-frame clip, [frames, tokens, C]."""
    block = spatial_attention_blocks(model.unet)[0]
    attn = model.unet.get_submodule(block + ".attn1")
    x = torch.randn(2, adapter._ref[block].shape[1], attn.to_q.in_features, generator=torch.Generator().manual_seed(5))
    adapter._call = (1, 2, 8, 8)
    out = adapter._attn_hook(block)(attn, (x,), {}, torch.zeros_like(x))
    return out, block


@pytest.mark.parametrize("mode,outside", [("blended", 0.75), ("binary", 0.0), ("none", 1.0)])
def test_reference_output_is_scaled_by_the_blended_box_mask(model, mode, outside):
    adapter = ZeroShotAdapter(ZeroShotConfig(motion=False)).attach(model)
    _randomise(adapter)
    adapter.set_condition(subject=_subject(), boxes=BOXES, video_size=(32, 32))
    adapter.config.mask_mode = mode  # read at every call: an inference-time ablation of one trained adapter
    masked, block = _hook_delta(adapter, model, mode)
    adapter.set_condition(subject=_subject(), video_size=(32, 32))  # the same without boxes: unmasked
    full, _ = _hook_delta(adapter, model, mode)
    tokens = masked.shape[1]
    side = int(tokens**0.5)
    m = torch.from_numpy(box_masks(np.array(BOXES, float), (32, 32), (side, side))).flatten(1)
    expected = full * (outside + (1 - outside) * m)[..., None]
    torch.testing.assert_close(masked, expected)
    assert full.abs().sum() > 0


def test_boxes_can_mask_the_reference_with_the_motion_module_off(model):
    """Beside the training-free box control the boxes mask the reference attention only (motion_module=False)."""
    adapter = ZeroShotAdapter(ZeroShotConfig(encoder_channels=(8, 8), encoder_heads=2)).attach(model)
    _randomise(adapter)
    latents = torch.randn(1, 4, 2, 8, 8, generator=torch.Generator().manual_seed(2))
    text = model.encode_prompt(["a red circle"])

    def out(**condition):
        adapter.set_condition(subject=_subject(), video_size=(32, 32), **condition)
        return unet_forward(model.unet, latents, torch.tensor(400), text)

    with torch.no_grad():
        masked_only = out(boxes=BOXES, motion_module=False)
        unmasked, with_motion = out(), out(boxes=BOXES)
        adapter.config.motion = False  # the same adapter without its motion module: what motion_module=False means
        try:
            reference_masked = out(boxes=BOXES)
        finally:
            adapter.config.motion = True
        adapter.config.mask_mode = "none"  # an unmasked reference: the boxes then change nothing
        try:
            unmasked_mode = out(boxes=BOXES, motion_module=False)
        finally:
            adapter.config.mask_mode = "blended"
    torch.testing.assert_close(masked_only, reference_masked)
    torch.testing.assert_close(unmasked_mode, unmasked)
    assert not torch.allclose(masked_only, unmasked) and not torch.allclose(masked_only, with_motion)


def test_conditions_map_to_rows_cyclically_across_a_guidance_batch(model):
    adapter = ZeroShotAdapter(ZeroShotConfig(encoder_channels=(8, 8), encoder_heads=2)).attach(model)
    _randomise(adapter)
    subjects = torch.cat([_subject(0), _subject(1)])
    boxes = np.array([BOXES, [[0, 0, 10, 10], [20, 20, 32, 32]]], float)
    adapter.set_condition(subject=subjects, boxes=boxes, video_size=(32, 32))
    g = torch.Generator().manual_seed(0)
    latents = torch.randn(1, 4, 2, 8, 8, generator=g)
    text = model.encode_prompt(["a red circle"] * 4)
    with torch.no_grad():
        both = unet_forward(model.unet, latents.repeat(4, 1, 1, 1, 1), torch.tensor(500), text)
        # the same clip under condition 1 alone
        adapter.set_condition(subject=subjects[1:], boxes=boxes[1:], video_size=(32, 32))
        second = unet_forward(model.unet, latents, torch.tensor(500), text[:1])
    torch.testing.assert_close(both[1], second[0])
    torch.testing.assert_close(both[3], second[0])  # row 3 of [uncond 0, 1; cond 0, 1] is condition 1 again
    assert not torch.allclose(both[0], both[1])


def _guided_calls(model, adapter, **condition):
    """UNet outputs for one clip: without the condition, with it, and as a [uncond; cond] guidance batch of it."""
    _randomise(adapter)
    g = torch.Generator().manual_seed(0)
    latents, t = torch.randn(1, 4, 2, 8, 8, generator=g), torch.tensor(500)
    text = model.encode_prompt(["a red circle"] * 2)
    with torch.no_grad():
        plain = unet_forward(model.unet, latents, t, text[:1])
        adapter.set_condition(video_size=(32, 32), **condition)
        conditioned = unet_forward(model.unet, latents, t, text[:1])
        model.uncond_rows = 1  # what generate sets for a [uncond; cond] batch of one prompt
        try:
            both = unet_forward(model.unet, latents.repeat(2, 1, 1, 1, 1), t, text)
        finally:
            model.uncond_rows = 0
    assert (plain - conditioned).abs().max() > 1e-3
    torch.testing.assert_close(both[1:], conditioned)  # the conditional branch always has the condition
    return plain, conditioned, both[:1]


@pytest.mark.parametrize("guided", [True, False])
def test_reference_sits_out_the_unconditional_branch_when_guided(model, guided):
    adapter = ZeroShotAdapter(ZeroShotConfig(motion=False, reference_guidance=guided)).attach(model)
    plain, with_ref, uncond = _guided_calls(model, adapter, subject=_subject())
    torch.testing.assert_close(uncond, plain if guided else with_ref)


@pytest.mark.parametrize("share", [0.0, 0.5, 1.0])
def test_boxes_leave_the_unconditional_branch_by_the_box_guidance_share(model, share):
    adapter = ZeroShotAdapter(ZeroShotConfig(reference=False, encoder_channels=(8, 8), encoder_heads=2,
                                             box_guidance=share)).attach(model)
    plain, with_boxes, uncond = _guided_calls(model, adapter, boxes=BOXES)
    if share in (0.0, 1.0):
        torch.testing.assert_close(uncond, with_boxes if share == 0 else plain)
    else:  # part of the way: clearly apart from both ends
        gap = (plain - with_boxes).abs().max()
        assert (uncond - plain).abs().max() > 0.1 * gap and (uncond - with_boxes).abs().max() > 0.1 * gap


def test_generate_marks_the_unconditional_rows_of_guided_calls_only(model):
    seen = []
    hook = model.unet.register_forward_pre_hook(lambda m, args: seen.append((args[0].shape[0], model.uncond_rows)))
    for scale in (7.5, 1.0):
        generate(model, ["a red circle", "a blue star"], num_frames=2, height=32, width=32, num_inference_steps=1,
                 guidance_scale=scale, output_type="latent")
    hook.remove()
    assert seen == [(4, 2), (2, 0)] and model.uncond_rows == 0


def test_motion_module_residuals_follow_the_boxes_and_dropout(model):
    adapter = ZeroShotAdapter(ZeroShotConfig(reference=False, encoder_channels=(8, 8), encoder_heads=2)).attach(model)
    _randomise(adapter)
    latents = torch.randn(2, 4, 2, 8, 8, generator=torch.Generator().manual_seed(1))
    text = model.encode_prompt(["a red circle"] * 2)
    with torch.no_grad():
        plain = unet_forward(model.unet, latents, torch.tensor(300), text)
        adapter.set_condition(boxes=[BOXES, BOXES], video_size=(32, 32), box_keep=[1.0, 0.0])  # per condition
        kept = unet_forward(model.unet, latents, torch.tensor(300), text)
        adapter.set_condition(boxes=[[0, 0, 8, 8], [0, 0, 8, 8]], video_size=(32, 32))
        other = unet_forward(model.unet, latents, torch.tensor(300), text)
    assert torch.equal(kept[1], plain[1])  # box dropout: that sample is the plain model's
    assert not torch.allclose(kept[0], plain[0]) and not torch.allclose(kept[0], other[0])


def test_condition_errors_are_one_line(model):
    with pytest.raises(CustomvidError, match="needs the reference attention, the motion module or both"):
        ZeroShotConfig(reference=False, motion=False)
    with pytest.raises(CustomvidError, match="mask mode"):
        ZeroShotConfig(mask_mode="soft")
    adapter = ZeroShotAdapter(ZeroShotConfig(reference=False, encoder_channels=(8, 8), encoder_heads=2)).attach(model)
    with pytest.raises(CustomvidError, match="no reference attention"):
        adapter.set_condition(subject=_subject())
    adapter.set_condition(boxes=[[0, 0, 8, 8]] * 3, video_size=(32, 32))
    with pytest.raises(CustomvidError, match="3 boxes per clip for a 2-frame video"):
        generate(model, "a red circle", num_frames=2, height=32, width=32, num_inference_steps=1,
                 output_type="latent", adapters=[adapter])
    with pytest.raises(CustomvidError, match="power-of-two"):
        BoxEncoder(8, 6)


def test_training_writes_a_resumable_adapter_that_changes_the_model(model, tmp_path):
    from customvid.training.adapter_loop import LoopConfig
    from customvid.training.zeroshot import ZeroShotTrainConfig, train_zeroshot

    small = dataclasses.replace(model, default_frames=2)
    cfg = ZeroShotTrainConfig(adapter=ZeroShotConfig(encoder_channels=(8, 8), encoder_heads=2),
                              loop=LoopConfig(steps=1, batch_size=2, lr=1e-3, checkpoint_every=1, sample_every=0))
    train_zeroshot(small, tmp_path / "a", cfg, progress=False).detach()
    cfg.loop.steps = 2  # the same command with more steps resumes
    adapter = train_zeroshot(small, tmp_path / "b", cfg, run_dir=tmp_path / "a.run", progress=False)
    step = json.loads((tmp_path / "a.run" / "adapter_run" / "checkpoint" / "step.json").read_text())["step"]
    assert step == 2  # resumed at 1, not restarted
    meta = json.loads((tmp_path / "b" / "adapter.json").read_text())
    assert meta["method"] == "zeroshot" and meta["training"]["steps_done"] == 2
    # --export-only: the run's latest checkpoint written as an adapter is the adapter training wrote
    from safetensors.torch import load_file

    from customvid.training.zeroshot import export_zeroshot

    export_zeroshot(dataclasses.replace(small, unet=copy.deepcopy(small.unet)), tmp_path / "e", tmp_path / "a.run")
    exported = load_file(tmp_path / "e" / "weights.safetensors")
    written = load_file(tmp_path / "b" / "weights.safetensors")
    assert exported.keys() == written.keys() and all(torch.equal(exported[k], written[k]) for k in written)
    assert any(p.abs().sum() > 0 for n, p in adapter.net.named_parameters() if n.endswith("to_out.weight"))
    cfg.box_weight = 4.0
    with pytest.raises(CustomvidError, match="other settings"):
        train_zeroshot(small, tmp_path / "c", cfg, run_dir=tmp_path / "a.run", progress=False)


def test_reweighted_loss_weights_the_box(model, tmp_path, monkeypatch):
    """The loss the loop gets is mean(((lambda M + 1 - M) * err)^2): check it against a direct computation."""
    import customvid.training.zeroshot as zs
    from customvid.training.adapter_loop import LoopConfig

    small = dataclasses.replace(model, default_frames=2)
    got = {}

    def fake_loop(run_dir, components, params, loss_fn, cfg, sample_fn, **kw):
        with torch.no_grad():
            got["loss"] = loss_fn(0, range(2)).item()
        return 0

    monkeypatch.setattr(zs, "train_loop", fake_loop)
    for weight in (1.0, 2.0):
        cfg = zs.ZeroShotTrainConfig(box_weight=weight, loop=LoopConfig(steps=1, batch_size=2, sample_every=0))
        zs.train_zeroshot(small, tmp_path / f"w{weight}", cfg, run_dir=tmp_path / f"r{weight}", progress=False)
        got[weight] = got["loss"]
        small.adapters[-1].detach()
    assert got[2.0] > got[1.0]  # the untrained adapter: the same errors, more weight inside the boxes


# -- CLI ---------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    d = tmp_path_factory.mktemp("zs")
    clip = render_clip(spec_from_caption("a red circle moving right on a blue background", frames=8))
    write_image(d / "subject.png", clip.frames[0])
    write_image(d / "mask.png", (clip.masks[0][..., None] * 255).repeat(3, -1).astype(np.uint8))
    write_image(d / "full.png", np.full((64, 64, 3), 255, np.uint8))  # keeps the background in the reference
    (d / "boxes.json").write_text(json.dumps({"keyframes": {"0": [0.1, 0.1, 0.4, 0.4], "7": [0.6, 0.5, 0.9, 0.9]},
                                              "units": "normalized"}))
    return d


@pytest.fixture(scope="module")
def zeroshot_dir(tiny_components, tmp_path_factory):
    import copy

    components = dataclasses.replace(tiny_components, unet=copy.deepcopy(tiny_components.unet), adapters=[])
    adapter = ZeroShotAdapter(ZeroShotConfig(encoder_channels=(8, 8), encoder_heads=2)).attach(components)
    _randomise(adapter)
    return adapter.save(tmp_path_factory.mktemp("zsa") / "zeroshot")


def _gen(tiny_model_dir, out, *extra):
    return main(["generate", "--model", str(tiny_model_dir), "--prompt", "a red circle on a blue background",
                 "--out", str(out), "--steps", "2", "--frames", "8", *extra])


def test_generate_with_subject_image_and_boxes(tiny_model_dir, inputs, zeroshot_dir, tmp_path):
    args = ["--subject-image", str(inputs / "subject.png"), "--boxes", str(inputs / "boxes.json"),
            "--zeroshot", str(zeroshot_dir)]
    assert _gen(tiny_model_dir, tmp_path / "a", *args) == 0
    assert _gen(tiny_model_dir, tmp_path / "b", *args, "--subject-mask", str(inputs / "full.png")) == 0
    assert _gen(tiny_model_dir, tmp_path / "c") == 0
    assert _gen(tiny_model_dir, tmp_path / "d", "--boxes", str(inputs / "boxes.json"), "--box-control", "free",
                "--box-subject", "red circle") == 0
    a, b, c, d = (sorted((tmp_path / n).glob("*.png")) for n in "abcd")
    assert len(a) == 8
    from customvid.io import read_image

    assert not np.array_equal(read_image(a[3]), read_image(c[3]))  # the conditions changed the clip
    assert not np.array_equal(read_image(a[3]), read_image(b[3]))  # the given mask replaced the segmented one
    assert not np.array_equal(read_image(d[3]), read_image(c[3]))  # the training-free control acted


def _set_condition_calls(monkeypatch) -> list:
    """(the adapter's config, the keyword arguments) of every set_condition call from now on."""
    seen = []
    original = ZeroShotAdapter.set_condition

    def spy(self, *args, **kwargs):
        seen.append((dataclasses.replace(self.config), kwargs))
        return original(self, *args, **kwargs)

    monkeypatch.setattr(ZeroShotAdapter, "set_condition", spy)
    return seen


def test_generate_free_box_control_still_masks_the_reference(tiny_model_dir, inputs, zeroshot_dir, tmp_path,
                                                              monkeypatch):
    seen = _set_condition_calls(monkeypatch)
    assert _gen(tiny_model_dir, tmp_path / "e", "--subject-image", str(inputs / "subject.png"), "--boxes",
                str(inputs / "boxes.json"), "--box-control", "free", "--box-subject", "red circle",
                "--zeroshot", str(zeroshot_dir)) == 0
    assert len(seen) == 1 and seen[0][1]["boxes"] is not None and seen[0][1]["motion_module"] is False


def test_generate_box_guidance_reaches_the_adapter(tiny_model_dir, inputs, zeroshot_dir, tmp_path, monkeypatch):
    seen = _set_condition_calls(monkeypatch)
    args = ["--boxes", str(inputs / "boxes.json"), "--zeroshot", str(zeroshot_dir)]
    assert _gen(tiny_model_dir, tmp_path / "a", *args) == 0
    assert _gen(tiny_model_dir, tmp_path / "b", *args, "--box-guidance", "0.25") == 0
    assert [config.box_guidance for config, _ in seen] == [1.0, 0.25]  # the modules' own default, then the option


@pytest.mark.parametrize("case,message", [
    ("bad_json", "not valid JSON"),
    ("frames", "5 boxes for a video of 8 frames"),
    ("outside", "outside the"),
    ("mask_alone", "--subject-mask needs --subject-image"),
    ("no_modules", "no zero-shot modules"),
    ("guidance_range", "--box-guidance must be between 0 and 1"),
    ("guidance_no_boxes", "--box-guidance applies to --boxes"),
])
def test_generate_bad_zeroshot_input_fails_in_one_line(tiny_model_dir, inputs, tmp_path, capsys, case, message):
    (tmp_path / "bad.json").write_text("{boxes: ")
    (tmp_path / "five.json").write_text(json.dumps({"boxes": [[0, 0, 10, 10]] * 5, "units": "pixels"}))
    (tmp_path / "out.json").write_text(json.dumps({"boxes": [[0, 0, 10, 100]] * 8, "units": "pixels"}))
    args = {"bad_json": ["--boxes", str(tmp_path / "bad.json")],
            "frames": ["--boxes", str(tmp_path / "five.json"), "--box-control", "free"],
            "outside": ["--boxes", str(tmp_path / "out.json"), "--box-control", "free"],
            "mask_alone": ["--subject-mask", str(inputs / "mask.png")],
            "no_modules": ["--subject-image", str(inputs / "subject.png")],
            "guidance_range": ["--boxes", str(inputs / "boxes.json"), "--box-guidance", "1.5"],
            "guidance_no_boxes": ["--subject-image", str(inputs / "subject.png"), "--box-guidance", "0.5"]}[case]
    assert _gen(tiny_model_dir, tmp_path / "x", *args) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if "error" in line]
    assert len(err) == 1 and message in err[0]
    assert not (tmp_path / "x").exists()


def test_train_zeroshot_cli_checks_before_loading(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(customvid.models, "load_components", lambda *a, **k: pytest.fail("the model was loaded"))
    assert main(["train-zeroshot", "--out", str(tmp_path / "z"), "--mask-blend", "1.5"]) == 2
    assert "mask_blend must be in [0, 1]" in capsys.readouterr().err
    assert main(["train-zeroshot", "--out", str(tmp_path / "z"), "--box-weight", "0"]) == 2
    assert "--box-weight must be > 0" in capsys.readouterr().err


def test_generate_combines_the_zeroshot_conditions_with_an_adapter_and_a_noise_prior(tiny_model_dir, inputs,
                                                                                   zeroshot_dir, tmp_path):
    """CLI: subject image + boxes + a subject LoRA + the AR(1) prior give exactly the Python API's clip."""
    from customvid.adapters import load_adapter
    from customvid.adapters.subject_lora import SubjectLora, SubjectLoraConfig
    from customvid.io import parse_boxes, read_image, read_video
    from customvid.models import load_components
    from customvid.segmentation import segment

    model = load_components(tiny_model_dir)
    lora = SubjectLora(SubjectLoraConfig(rank=4, alpha=4.0, token="<aa>", class_word="circle")).attach(model)
    with torch.no_grad():
        for p in lora.trainable_parameters():
            p.add_(0.1 * torch.randn(p.shape, generator=torch.Generator().manual_seed(p.numel())))
    lora_dir = lora.save(tmp_path / "lora")
    lora.detach()
    prompt = "a <aa> circle on a blue background"
    assert main(["generate", "--model", str(tiny_model_dir), "--prompt", prompt, "--out", str(tmp_path / "clip"),
                 "--steps", "3", "--frames", "8", "--noise", "ar1:0.15", "--adapter", str(lora_dir),
                 "--adapter-weight", "0.7", "--subject-image", str(inputs / "subject.png"),
                 "--boxes", str(inputs / "boxes.json"), "--zeroshot", str(zeroshot_dir)]) == 0
    image = read_image(inputs / "subject.png")
    boxes = parse_boxes(json.loads((inputs / "boxes.json").read_text()), 8, 64, 64)
    zs = load_adapter(zeroshot_dir, model).set_condition(subject=image, subject_mask=segment(image), boxes=boxes)
    want = generate(model, prompt, seed=0, num_inference_steps=3, num_frames=8, noise="ar1:0.15",
                    adapters=[load_adapter(lora_dir, model, schedule=0.7), zs]).frames[0]
    got = read_video(tmp_path / "clip").frames  # PNG frames: lossless
    assert np.array_equal(got, want)
    zs.clear_condition()
    lora_only = generate(model, prompt, seed=0, num_inference_steps=3, num_frames=8, noise="ar1:0.15",
                         adapters=[model.adapters[0]]).frames[0]
    assert not np.array_equal(got, lora_only)  # the zero-shot conditions acted on top of the LoRA


def test_training_captions_name_the_subject_by_class_generic_word_or_in_full():
    from customvid.training.zeroshot import GENERIC_SUBJECT, world_sample
    from customvid.world.splits import sample_spec

    rng = np.random.default_rng(0)
    kinds = []
    for i in range(60):
        spec = sample_spec("train", i, frames=2, width=32, height=32, fps=4.0)
        caption = world_sample(i, 2, 32, 32, 4.0, rng, class_caption=0.5, generic_caption=0.25)["caption"]
        if spec.subject.phrase() in caption:
            kinds.append("full")
        elif re.search(rf"\ban {GENERIC_SUBJECT}\b", caption):
            kinds.append("generic")
        else:
            assert re.search(rf"\ban? {spec.subject.shape}\b", caption)  # "a heart", the colour not named
            kinds.append("class")
        assert f"{spec.background} background" in caption
    counts = {k: kinds.count(k) for k in ("full", "class", "generic")}
    assert 20 <= counts["class"] <= 40 and 7 <= counts["generic"] <= 23 and 7 <= counts["full"] <= 23
    assert world_sample(0, 2, 32, 32, 4.0, rng)["caption"] == sample_spec("train", 0, frames=2, width=32, height=32,
                                                                           fps=4.0).caption  # default: full


def test_a_run_made_before_box_guidance_and_lr_schedule_existed_resumes(tmp_path):
    from customvid.training.adapter_loop import LOOP_ADDED_KEYS
    from customvid.training.checkpoint import check_run_config
    from customvid.training.zeroshot import OPERATIONAL, ZeroShotTrainConfig

    want = ZeroShotTrainConfig().to_json()
    old = copy.deepcopy(want)
    del old["adapter"]["box_guidance"], old["loop"]["lr_schedule"]
    (tmp_path / "config.json").write_text(json.dumps(old))
    # no error: an inference-only setting, and a loop option the old run had at its default
    check_run_config(tmp_path, want, OPERATIONAL, LOOP_ADDED_KEYS)
    want["adapter"]["mask_mode"] = "binary"
    with pytest.raises(CustomvidError, match="other settings"):
        check_run_config(tmp_path, want, OPERATIONAL, LOOP_ADDED_KEYS)  # what the modules learn still must match


def test_loss_log_lines_average_the_steps_since_the_last_line(model, tmp_path):
    from customvid.training.adapter_loop import LoopConfig
    from customvid.training.zeroshot import ZeroShotTrainConfig, train_zeroshot

    small = dataclasses.replace(model, default_frames=2)
    lines = {}
    for every in (1, 2):  # the same seeded run, logged every step and every second step
        cfg = ZeroShotTrainConfig(adapter=ZeroShotConfig(encoder_channels=(8, 8), encoder_heads=2),
                                  loop=LoopConfig(steps=4, batch_size=1, lr=1e-3, sample_every=0, log_every=every))
        train_zeroshot(small, tmp_path / f"a{every}", cfg, progress=False).detach()
        log = (tmp_path / f"a{every}.run" / "loss_log.jsonl").read_text().splitlines()
        lines[every] = [json.loads(line) for line in log]
    each = [r["loss_step"] for r in lines[1]]
    assert [r["step"] for r in lines[2]] == [2, 4] and [r["steps"] for r in lines[2]] == [2, 2]
    assert lines[2][0]["loss"] == pytest.approx((each[0] + each[1]) / 2)
    assert lines[2][1]["loss"] == pytest.approx((each[2] + each[3]) / 2)
    assert lines[2][1]["loss_step"] == pytest.approx(each[3]) and each[2] != each[3]


def test_training_can_start_from_an_adapter(model, tmp_path):
    from customvid.training.adapter_loop import LoopConfig
    from customvid.training.zeroshot import ZeroShotTrainConfig, check_zeroshot_config, train_zeroshot

    small = dataclasses.replace(model, default_frames=2)
    config = ZeroShotConfig(encoder_channels=(8, 8), encoder_heads=2)
    start = ZeroShotAdapter(config).attach(dataclasses.replace(small, unet=copy.deepcopy(small.unet), adapters=[]))
    _randomise(start, seed=5)
    start.save(tmp_path / "start", extra={"training": {"steps_done": 7, "seed": 3}})
    # an inference-only setting may differ from the start's; the export carries the run's
    run_config = dataclasses.replace(config, box_guidance=0.25)
    cfg = ZeroShotTrainConfig(adapter=run_config, init_from=str(tmp_path / "start"),
                              loop=LoopConfig(steps=1, batch_size=2, lr=0.0, warmup=0, sample_every=0))
    trained = train_zeroshot(small, tmp_path / "out", cfg, progress=False)  # lr 0: the start comes out unchanged
    assert all(torch.equal(a, b) for a, b in zip(trained.net.state_dict().values(), start.net.state_dict().values(),
                                                 strict=True))
    trained.detach()
    meta = json.loads((tmp_path / "out" / "adapter.json").read_text())
    assert meta["config"]["box_guidance"] == 0.25
    # the chain of stages: the start's own record travels inside, and the steps add up
    assert meta["training"]["init_training"] == {"steps_done": 7, "seed": 3}
    assert meta["training"]["steps_done"] == 1 and meta["training"]["total_steps"] == 8
    # the record is the start's as the run began: replacing the start folder later does not rewrite it
    start.save(tmp_path / "start", extra={"training": {"steps_done": 99}}, overwrite=True)
    from customvid.training.zeroshot import export_zeroshot

    export_zeroshot(dataclasses.replace(small, unet=copy.deepcopy(small.unet)), tmp_path / "e", tmp_path / "out.run")
    meta = json.loads((tmp_path / "e" / "adapter.json").read_text())
    assert meta["training"]["init_training"] == {"steps_done": 7, "seed": 3} and meta["training"]["total_steps"] == 8
    with pytest.raises(CustomvidError, match="trained with"):
        cfg.adapter = ZeroShotConfig(encoder_channels=(8, 8), encoder_heads=2, mask_mode="binary")
        train_zeroshot(small, tmp_path / "out2", cfg, progress=False)
    with pytest.raises(CustomvidError, match="add up to <= 1"):
        check_zeroshot_config(ZeroShotTrainConfig(class_caption=0.8, generic_caption=0.3))


def test_reference_is_cropped_around_the_masked_subject():
    from customvid.adapters.zeroshot.adapter import crop_to_subject

    image, mask = torch.zeros(2, 3, 64, 64), torch.zeros(2, 64, 64)
    mask[0, 10:20, 40:50] = 1  # a 10 px subject
    mask[1, 0:8, 60:64] = 1  # one cut by the frame's corner: the window is padded, never out of range
    image[:, 0] = mask
    crops = crop_to_subject(image, mask, 0.15)
    assert crops.shape == (2, 3, 64, 64)
    # the subject fills (10 / 13)^2 of the 13 px window instead of 2.4 % of the frame, centred
    assert 0.5 < (crops[0, 0] > 0.5).float().mean() < 0.7 and crops[0, 0, 32, 32] == 1.0
    assert crops[1, 0].max() == 1.0 and crops[1, 1:].abs().max() == 0
    assert torch.equal(crop_to_subject(image, torch.zeros(2, 64, 64), 0.15), image)  # no subject: the whole frame
