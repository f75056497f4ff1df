"""`customvid train-motion` end to end on the tiny model: clip loading and checks, what trains, resume,
MotionDirector's recipe, the joint subject stage, and sampling with the adapter."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

from customvid.adapters import read_adapter
from customvid.cli import main
from customvid.errors import CustomvidError
from customvid.io import write_video
from customvid.models.backbones import cross_attention_kv_layers, temporal_parameters
from customvid.training.losses import appearance_debiased
from customvid.training.motion_data import frame_indices, load_motion_clips

FAST = ["--steps", "2", "--batch", "2", "--reg-clips", "2", "--sample-every", "0", "--no-progress",
        "--checkpoint-every", "1"]


def _moving_square(n: int, size: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    frames = np.zeros((n, size, size + 16, 3), np.uint8)
    colour = rng.integers(100, 255, 3)
    for f in range(n):
        x = 4 + f * 3
        frames[f, 20:36, x : x + 16] = colour
    return frames


@pytest.fixture
def clips(tmp_path):
    """Three clips in the three readable forms, of different sizes and lengths, each with its caption."""
    folder = tmp_path / "clips"
    folder.mkdir()
    write_video(folder / "a.mp4", _moving_square(12, 64, 0), fps=8)
    write_video(folder / "b.gif", _moving_square(9, 80, 1), fps=6)
    write_video(folder / "c", _moving_square(10, 72, 2), fps=8)  # a folder of PNG frames
    for name in ("a", "b", "c"):
        (folder / f"{name}.txt").write_text("a white square doing <pll> on a black background")
    return folder


def _train(tmp_path, clips, model, out="motion", *extra):
    argv = ["train-motion", "--videos", str(clips), "--out", str(tmp_path / out), "--model", str(model), *FAST,
            *extra]
    return main(argv)


def test_frame_sampling():
    assert frame_indices(16, 8.0, 8, 4.0, "even").tolist() == [0, 2, 4, 6, 9, 11, 13, 15]
    # a window at the model's fps: every second frame of an 8 fps clip for a 4 fps model, from the middle
    assert frame_indices(20, 8.0, 4, 4.0, "window").tolist() == [6, 8, 10, 12]  # starts at 6.5, rounded
    with pytest.raises(ValueError, match="shorter"):
        frame_indices(6, 8.0, 8, 4.0, "window")


def test_clips_of_any_form_size_and_length_become_model_clips(clips):
    data = load_motion_clips(clips, 64, 64, 8, 4.0, token="<pll>")
    assert data.frames.shape == (3, 8, 64, 64, 3) and data.names == ["a.mp4", "b.gif", "c"]
    assert set(data.captions) == {"a white square doing <pll> on a black background"}
    # the square moves right in every clip after resampling
    xs = [(f[..., 0] > 50).nonzero()[1].mean() for f in data.frames[0]]
    assert xs[-1] > xs[0]


@pytest.mark.parametrize("problem, message", [
    ("no caption", "has no caption"),
    ("no token", "does not use the token <pll>"),
    ("one frame", "has 1 frame"),
    ("unreadable", "clip .*bad.mp4"),
])
def test_unusable_clips_are_named_before_training(tmp_path, clips, tiny_model_dir, capsys, problem, message):
    if problem == "no caption":
        (clips / "b.txt").unlink()
    elif problem == "no token":
        (clips / "b.txt").write_text("a white square moving right")
    elif problem == "one frame":
        write_video(clips / "d.gif", _moving_square(1, 64, 3), fps=8)
        (clips / "d.txt").write_text("a square doing <pll>")
    else:
        (clips / "bad.mp4").write_bytes(b"not a video")
        (clips / "bad.txt").write_text("a square doing <pll>")
    assert _train(tmp_path, clips, tiny_model_dir) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    import re

    assert re.search(message, err), err
    assert not (tmp_path / "motion").exists() and not (tmp_path / "motion.run").exists()


def test_full_tuning_trains_temporal_and_kv_and_the_token(tmp_path, clips, tiny_model_dir, tiny_components):
    # no regularization: with seed 0 all 4 samples of 2 steps would be world clips fitted to the base model, which
    # the untrained adapter already matches exactly (no gradient, nothing to see trained)
    assert _train(tmp_path, clips, tiny_model_dir, "motion", "--reg-ratio", "0") == 0
    files = read_adapter(tmp_path / "motion")
    assert files.meta["method"] == "motion" and files.meta["config"]["params"] == "temporal+kv"
    kv = [n + ".weight" for n in cross_attention_kv_layers(tiny_components.unet)]
    assert set(files.weights) == set(temporal_parameters(tiny_components.unet)) | set(kv)
    assert any(files.weights[k].abs().sum() > 0 for k in kv)  # trained, not just saved zeros
    assert "<pll>" in files.tokens and not files.lora
    assert (tmp_path / "motion.run" / "loss_log.jsonl").is_file()
    assert _train(tmp_path, clips, tiny_model_dir) == 2  # exists: refused without --overwrite


def test_lora_temporal_only(tmp_path, clips, tiny_model_dir, tiny_components):
    assert _train(tmp_path, clips, tiny_model_dir, "m", "--params", "temporal", "--lora-rank", "2",
                  "--timestep-bias", "1") == 0
    files = read_adapter(tmp_path / "m")
    modules = {k[len("unet."):].rsplit(".lora_", 1)[0] for k in files.lora}
    roots = {n.split(".temp_")[0] for n in temporal_parameters(tiny_components.unet)}
    assert modules and all(".temp_" in m or m.startswith("transformer_in") for m in modules), roots
    assert not files.weights


def test_regularization_fitted_to_the_base_model(tmp_path, clips, tiny_model_dir):
    # with seed 0, 3 of the 4 samples of these 2 steps are world clips (fitted to the base), 1 a motion clip
    assert _train(tmp_path, clips, tiny_model_dir, "b", "--reg-target", "base", "--reg-ratio", "0.1") == 0
    files = read_adapter(tmp_path / "b")
    assert files.meta["training"]["reg_target"] == "base"
    assert any(v.abs().sum() > 0 for v in files.weights.values())


def test_resumed_run_equals_uninterrupted(tmp_path, clips, tiny_model_dir):
    run = tmp_path / "run"
    assert _train(tmp_path, clips, tiny_model_dir, "half", "--run-dir", str(run)) == 0
    four = ["--steps", "4"]
    assert _train(tmp_path, clips, tiny_model_dir, "resumed", "--run-dir", str(run), *four) == 0
    assert _train(tmp_path, clips, tiny_model_dir, "straight", "--run-dir", str(tmp_path / "run2"), *four) == 0
    a = load_file(tmp_path / "resumed" / "weights.safetensors")
    b = load_file(tmp_path / "straight" / "weights.safetensors")
    c = load_file(tmp_path / "half" / "weights.safetensors")
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert any(not torch.equal(a[k], c[k]) for k in a)
    ta = load_file(tmp_path / "resumed" / "learned_embeds.safetensors")["<pll>"]
    tb = load_file(tmp_path / "straight" / "learned_embeds.safetensors")["<pll>"]
    assert torch.equal(ta, tb)


def test_motiondirector_keeps_the_temporal_lora_only(tmp_path, clips, tiny_model_dir, tiny_components, capsys):
    assert _train(tmp_path, clips, tiny_model_dir, "md", "--recipe", "motiondirector") == 2
    assert "--lora-rank" in capsys.readouterr().err
    assert _train(tmp_path, clips, tiny_model_dir, "md", "--recipe", "motiondirector", "--params", "temporal",
                  "--lora-rank", "2", "--spatial-rank", "2", "--spatial-steps", "2") == 0
    files = read_adapter(tmp_path / "md")
    modules = {k[len("unet."):].rsplit(".lora_", 1)[0] for k in files.lora}
    assert modules and not [m for m in modules if ".attentions." in m and ".temp_" not in m]
    assert files.meta["training"]["recipe"] == "motiondirector"
    assert (tmp_path / "md.run" / "spatial" / "adapter_run").exists()


def test_appearance_debiased_loss_keeps_differences_between_frames():
    x = torch.randn(2, 4, 5, 3, 3)
    anchor = torch.tensor([0, 3])
    d = appearance_debiased(x, anchor)
    alpha = 2**0.5
    assert torch.allclose(d[1, :, 2], alpha * x[1, :, 2] - x[1, :, 3])
    # frame differences are scaled by alpha, so a constant video (pure appearance) shrinks to (alpha - 1) x
    assert torch.allclose(d[:, :, 1] - d[:, :, 0], alpha * (x[:, :, 1] - x[:, :, 0]), atol=1e-6)
    still = x[:, :, :1].expand_as(x)
    assert torch.allclose(appearance_debiased(still, anchor), (alpha - 1) * still, atol=1e-6)


def test_joint_subject_stage_and_both_adapters_in_generate(tmp_path, clips, tiny_model_dir):
    photos = tmp_path / "photos"
    photos.mkdir()
    for i in range(2):
        image = np.zeros((64, 64, 3), np.uint8)
        image[20:40, 20:40] = (200, 40, 40)
        Image.fromarray(image).save(photos / f"p{i}.png")
    assert _train(tmp_path, clips, tiny_model_dir, "motion", "--subject-images", str(photos), "--class-word",
                  "square", "--subject-out", str(tmp_path / "subject"), "--subject-steps", "2") == 0
    subject = read_adapter(tmp_path / "subject")
    assert subject.meta["method"] == "lora" and "<sks>" in subject.tokens
    out = tmp_path / "both.mp4"
    argv = ["generate", "--model", str(tiny_model_dir), "--prompt", "a <sks> square doing <pll> on a gray background",
            "--adapter", str(tmp_path / "subject"), "--adapter", str(tmp_path / "motion"), "--out", str(out),
            "--steps", "2", "--frames", "2"]
    assert main(argv) == 0 and out.is_file()


def test_manifest_and_bad_manifest(tmp_path, clips):
    manifest = tmp_path / "m.jsonl"
    manifest.write_text('{"video": "clips/a.mp4", "caption": "x doing <pll>"}\n')
    data = load_motion_clips(None, 64, 64, 4, 4.0, manifest=manifest, token="<pll>")
    assert data.names == ["a.mp4"] and data.captions == ["x doing <pll>"]
    manifest.write_text("not json\n")
    with pytest.raises(CustomvidError, match="m.jsonl:1"):
        load_motion_clips(None, 64, 64, 4, 4.0, manifest=manifest)
