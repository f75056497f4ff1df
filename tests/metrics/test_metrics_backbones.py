"""Backbone loading from local folders: tiny random CLIPModel / ViT saved with save_pretrained."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from customvid.errors import CustomvidError
from customvid.metrics import EvalRecord, evaluate_records, load_clip, load_dino
from customvid.metrics.backbones import IMAGENET_MEAN, IMAGENET_STD, preprocess


def images(n, h=20, w=28, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for _ in range(n)]


def test_preprocess_resize_crop_normalise():
    flat = np.full((10, 30, 3), 128, np.uint8)
    x = preprocess([flat], resize=37, crop=32, mean=IMAGENET_MEAN, std=IMAGENET_STD)
    assert x.shape == (1, 3, 32, 32)
    want = (128 / 255 - np.array(IMAGENET_MEAN)) / np.array(IMAGENET_STD)
    assert x[0, :, 16, 16].numpy() == pytest.approx(want, abs=1e-5)
    # centre crop: a stripe at the left edge of a wide image is cut away
    img = np.zeros((32, 96, 3), np.uint8)
    img[:, :8] = 255
    assert preprocess([img], 32, 32, (0, 0, 0), (1, 1, 1)).max() == 0.0


def test_load_clip_matches_the_model(tiny_clip_dir):
    clip = load_clip(tiny_clip_dir)
    ims = images(5)
    feats = clip.embed_images(ims)
    assert feats.shape == (5, 16)
    pixels = preprocess(ims, 32, 32, clip.mean, clip.std)
    with torch.no_grad():
        out = clip.model.get_image_features(pixel_values=pixels)
    want = out if isinstance(out, torch.Tensor) else out.pooler_output
    assert feats == pytest.approx(want.numpy(), abs=1e-5)
    # batching does not change features
    assert np.concatenate([clip.embed_images(ims[:2]), clip.embed_images(ims[2:])]) == pytest.approx(
        feats, abs=1e-5
    )
    text = clip.embed_texts(["a red star moving left", "a blue circle"])
    assert text.shape == (2, 16) and np.isfinite(text).all()
    assert not np.allclose(text[0], text[1])


def test_clip_preprocessor_config_is_honoured(tiny_clip_dir, tmp_path):
    import shutil

    folder = tmp_path / "clip"
    shutil.copytree(tiny_clip_dir, folder)
    (folder / "preprocessor_config.json").write_text(
        json.dumps(
            {
                "size": {"shortest_edge": 40},
                "crop_size": {"height": 32, "width": 32},
                "image_mean": [0.5, 0.5, 0.5],
                "image_std": [0.25, 0.25, 0.25],
            }
        )
    )
    clip = load_clip(folder)
    assert (clip.resize, clip.crop, clip.mean, clip.std) == (40, 32, (0.5, 0.5, 0.5), (0.25, 0.25, 0.25))


def test_load_dino_cls_token(tiny_vit_dir):
    dino = load_dino(tiny_vit_dir)
    assert (dino.resize, dino.crop) == (37, 32)  # 256/224 of the model's image size, crop = image size
    ims = images(3, 40, 40)
    feats = dino.embed_images(ims)
    with torch.no_grad():
        cls = dino.model(pixel_values=preprocess(ims, 37, 32, IMAGENET_MEAN, IMAGENET_STD)).last_hidden_state[
            :, 0
        ]
    assert feats == pytest.approx(cls.numpy(), abs=1e-5)


def test_loader_errors(tmp_path, tiny_clip_dir):
    with pytest.raises(CustomvidError, match="does not exist"):
        load_clip(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(CustomvidError, match="no config.json"):
        load_dino(tmp_path / "empty")
    with pytest.raises(CustomvidError, match="'clip' model"):
        load_dino(tiny_clip_dir)


def test_all_similarity_metrics_run_on_tiny_backbones(tiny_clip_dir, tiny_vit_dir):
    rng = np.random.default_rng(3)
    frames = rng.integers(0, 256, (4, 24, 24, 3), dtype=np.uint8)
    boxes = np.array([[2, 2, 12, 12]] * 4, dtype=float)
    recs = [
        EvalRecord(frames, "a red square", [frames[0]], boxes, id="x"),
        EvalRecord(frames[::-1].copy(), "a blue star", [frames[1], frames[2]], None, id="y"),
    ]
    names = ["clip_t", "clip_i", "dino_i", "r_clip", "r_dino", "temporal_consistency", "subject_consistency"]
    rep = evaluate_records(
        recs, names, clip=str(tiny_clip_dir), dino=tiny_vit_dir, batch_size=3, detector=None
    )
    for name in names:
        res = rep.results[name]
        assert res.skipped_reason is None, name
        assert -1.0 <= res.aggregate <= 1.0, name
    assert rep.results["r_dino"].per_video[1] is None
    assert rep.settings["clip"] == str(tiny_clip_dir)
