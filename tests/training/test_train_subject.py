"""`customvid train-subject` end to end on the tiny model: input checks, resume, atomic output, data parallel."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image
from safetensors.torch import load_file

from customvid.adapters import read_adapter
from customvid.cli import main
from customvid.models.backbones import spatial_attention_layers, temporal_roots

FAST = ["--steps", "2", "--batch", "2", "--prior-clips", "2", "--prior-steps", "2", "--sample-every", "0",
        "--no-progress", "--checkpoint-every", "1"]


@pytest.fixture
def photos(tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(3):
        image = np.zeros((80, 96, 3), np.uint8)
        image[20:50, 30:60] = rng.integers(0, 255, 3)
        Image.fromarray(image).save(folder / f"p{i}.png")
        mask = np.zeros((80, 96), np.uint8)
        mask[20:50, 30:60] = 255
        Image.fromarray(mask).save(folder / f"p{i}_mask.png")
    return folder


def _train(tmp_path, photos, model, out="adapter", *extra):
    argv = ["train-subject", "--images", str(photos), "--token", "<sks>", "--class-word", "circle",
            "--out", str(tmp_path / out), "--model", str(model), *FAST, *extra]
    return main(argv)


def test_trains_spatial_lora_only_and_writes_the_folder(tmp_path, photos, tiny_model_dir, tiny_components):
    assert _train(tmp_path, photos, tiny_model_dir) == 0
    files = read_adapter(tmp_path / "adapter")
    assert files.meta["method"] == "lora" and files.meta["training"]["images"] == ["p0.png", "p1.png", "p2.png"]
    assert "<sks>" in files.tokens
    modules = {k[len("unet."):].rsplit(".lora_", 1)[0] for k in files.lora}
    assert modules == set(spatial_attention_layers(tiny_components.unet))
    roots = temporal_roots(tiny_components.unet)
    assert not [m for m in modules if any(m.startswith(r) for r in roots)]
    run = tmp_path / "adapter.run"
    assert (run / "loss_log.jsonl").is_file()
    assert (run / "prior.npz").is_file()
    assert not [p for p in tmp_path.iterdir() if ".tmp" in p.name]


def test_resumed_run_equals_uninterrupted(tmp_path, photos, tiny_model_dir):
    # 2 steps, then the same run folder continued to 4, vs 4 steps in one go
    run = tmp_path / "run"
    assert _train(tmp_path, photos, tiny_model_dir, "half", "--run-dir", str(run)) == 0
    argv4 = [*FAST[:1], "4", *FAST[2:]]
    full = ["train-subject", "--images", str(photos), "--token", "<sks>", "--class-word", "circle",
            "--model", str(tiny_model_dir), *argv4]
    assert main([*full, "--out", str(tmp_path / "resumed"), "--run-dir", str(run)]) == 0
    assert main([*full, "--out", str(tmp_path / "straight"), "--run-dir", str(tmp_path / "run2")]) == 0
    a = load_file(tmp_path / "resumed" / "pytorch_lora_weights.safetensors")
    b = load_file(tmp_path / "straight" / "pytorch_lora_weights.safetensors")
    c = load_file(tmp_path / "half" / "pytorch_lora_weights.safetensors")
    assert a.keys() == b.keys()
    assert all((a[k] == b[k]).all() for k in a)
    assert any((a[k] != c[k]).any() for k in a)  # the continuation did train


def test_other_settings_in_the_same_run_folder_are_refused(tmp_path, photos, tiny_model_dir, capsys):
    run = tmp_path / "run"
    assert _train(tmp_path, photos, tiny_model_dir, "a", "--run-dir", str(run)) == 0
    assert _train(tmp_path, photos, tiny_model_dir, "b", "--run-dir", str(run), "--lr", "0.5") == 2
    assert "other settings" in capsys.readouterr().err


def _bad(tmp_path, photos):
    empty = tmp_path / "empty"
    empty.mkdir()
    tiny = tmp_path / "tiny"
    tiny.mkdir()
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tiny / "a.png")
    bad_mask = tmp_path / "badmask"
    bad_mask.mkdir()
    Image.fromarray(np.zeros((40, 40, 3), np.uint8)).save(bad_mask / "a.png")
    Image.fromarray(np.zeros((20, 20), np.uint8)).save(bad_mask / "a_mask.png")
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "a.png").write_bytes(b"not a png")
    return {
        "missing": ([str(tmp_path / "nope"), "<sks>"], "not a folder"),
        "empty": ([str(empty), "<sks>"], "no PNG or JPEG"),
        "tiny": ([str(tiny), "<sks>"], "too small"),
        "mask": ([str(bad_mask), "<sks>"], "mask"),
        "unreadable": ([str(broken), "<sks>"], "cannot read image"),
        "empty token": ([str(photos), ""], "must look like"),
        "word token": ([str(photos), "circle"], "must look like"),
    }


@pytest.mark.parametrize(
    "case", ["missing", "empty", "tiny", "mask", "unreadable", "empty token", "word token"]
)
def test_bad_input_fails_before_training(case, tmp_path, photos, tiny_model_dir, capsys):
    (images, token), message = _bad(tmp_path, photos)[case]
    argv = ["train-subject", "--images", images, "--token", token, "--class-word", "circle",
            "--out", str(tmp_path / "out"), "--model", str(tiny_model_dir), *FAST]
    assert main(argv) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("customvid")]
    assert len(err) == 1 and message in err[0]
    assert not (tmp_path / "out").exists() and not (tmp_path / "out.run" / "adapter_run").exists()


def test_existing_out_needs_overwrite(tmp_path, photos, tiny_model_dir, capsys):
    (tmp_path / "adapter").mkdir()
    (tmp_path / "adapter" / "mine.txt").write_text("keep")
    assert _train(tmp_path, photos, tiny_model_dir) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert (tmp_path / "adapter" / "mine.txt").read_text() == "keep"
    assert _train(tmp_path, photos, tiny_model_dir, "adapter", "--overwrite") == 0
    assert not (tmp_path / "adapter" / "mine.txt").exists()


def test_known_token_is_refused():
    from customvid.adapters.tokens import check_token
    from customvid.errors import CustomvidError
    from customvid.models.text import load_minilm

    tokenizer, _ = load_minilm()
    tokenizer.add_tokens(["<old>"])
    with pytest.raises(CustomvidError, match="already known"):
        check_token("<old>", tokenizer)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_two_processes_match_one_at_the_same_global_batch(tmp_path, photos, tiny_model_dir):
    args = ["train-subject", "--images", str(photos), "--token", "<sks>", "--class-word", "circle",
            "--model", str(tiny_model_dir), "--steps", "3", "--batch", "4", "--prior-clips", "2",
            "--prior-steps", "2", "--sample-every", "0", "--no-progress", "--lr", "1e-3"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    one = [sys.executable, "-m", "customvid", *args, "--out", str(tmp_path / "one")]
    subprocess.run(one, check=True, env=env, capture_output=True)
    two = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
           "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
           "--main_process_port", str(_free_port()), "-m", "customvid", *args, "--out", str(tmp_path / "two")]
    result = subprocess.run(two, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    meta = read_adapter(tmp_path / "two").meta
    assert meta["training"]["processes"] == 2
    a = load_file(tmp_path / "one" / "pytorch_lora_weights.safetensors")
    b = load_file(tmp_path / "two" / "pytorch_lora_weights.safetensors")
    assert a.keys() == b.keys()
    moved = [k for k in a if ".lora_B." in k]
    assert any(a[k].abs().max() > 0 for k in moved)  # it trained
    # Adam's first steps move each weight by about lr * g / |g|: a gradient entry near 0 turns the summation
    # order of the all-reduce (rounding, ~1e-7) into up to ~1e-6 here; 1e-5 is 1 % of one step (lr 1e-3)
    for k in a:
        np.testing.assert_allclose(a[k].numpy(), b[k].numpy(), rtol=1e-4, atol=1e-5)


def test_captions_and_masks_are_read(photos):
    from customvid.training.subject_data import load_subject_images

    (photos / "p1.txt").write_text("a {token} {class_word} staying still on a gray background\n")
    data = load_subject_images(photos, 32, 32)
    assert data.captions == [None, "a {token} {class_word} staying still on a gray background", None]
    assert data.masks.shape == (3, 32, 32) and data.masks.any((1, 2)).all()
    assert data.images.shape == (3, 32, 32, 3)


def test_masked_loss_needs_masks_and_trains_with_them(tmp_path, photos, tiny_model_dir, capsys):
    bare = tmp_path / "bare"
    bare.mkdir()
    for p in photos.glob("p?.png"):
        (bare / p.name).write_bytes(p.read_bytes())
    assert _train(tmp_path, bare, tiny_model_dir, "a", "--masked-loss") == 2
    assert "--masked-loss needs masks" in capsys.readouterr().err
    assert _train(tmp_path, photos, tiny_model_dir, "b", "--masked-loss") == 0
    assert read_adapter(tmp_path / "b").meta["training"]["masked_loss"] is True
