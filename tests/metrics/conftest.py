"""Fixtures for the metrics tests: fake backbones with known features, fake detectors and probes, tiny random
CLIP / ViT checkpoints saved to a temp folder (never downloaded)."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest


class MeanColourBackbone:
    """Feature of an image = its mean colour (R, G, B) / 255 + 0.01, known by hand; records batch sizes."""

    def __init__(self):
        self.batches: list[int] = []
        self.text_batches: list[int] = []

    def embed_images(self, images):
        self.batches.append(len(images))
        return np.stack(
            [np.asarray(im, dtype=np.float64).reshape(-1, 3).mean(0) / 255 + 0.01 for im in images]
        )

    def embed_texts(self, texts):
        self.text_batches.append(len(texts))
        table = {"red": [1.0, 0.0, 0.0], "green": [0.0, 1.0, 0.0], "blue": [0.0, 0.0, 1.0]}
        return np.stack([np.asarray(table.get(t.split()[0], [1.0, 1.0, 1.0])) for t in texts])


class FixedDetector:
    """Returns preset boxes per video (looked up by the first frame's bytes)."""

    def __init__(self, mapping: dict[bytes, np.ndarray]):
        self.mapping = mapping

    def detect(self, frames):
        return self.mapping[frames[0].tobytes()]


def square_video(n_frames=8, size=32, box=(8, 8, 16, 16), step=(2, 0), colour=(230, 40, 40), bg=(0, 0, 0)):
    """A solid square moving by `step` px per frame; returns (frames, boxes)."""
    frames = np.empty((n_frames, size, size, 3), np.uint8)
    boxes = np.empty((n_frames, 4))
    for f in range(n_frames):
        x1, y1 = box[0] + step[0] * f, box[1] + step[1] * f
        x2, y2 = x1 + box[2] - box[0], y1 + box[3] - box[1]
        frames[f] = bg
        frames[f, y1:y2, x1:x2] = colour
        boxes[f] = (x1, y1, x2, y2)
    return frames, boxes


@pytest.fixture
def fake_backbone():
    return MeanColourBackbone()


@pytest.fixture
def fake_probe(monkeypatch):
    """Replace the world probe: boxes of the pixels unlike the frame's top-left pixel, attributes from a
    lookup keyed by the first frame's bytes."""
    readings: dict[bytes, dict] = {}

    def probe_video(frames):
        present = (frames != frames[:, :1, :1]).any(axis=-1)  # unlike the top-left (background) pixel
        boxes = np.full((len(frames), 4), np.nan)
        for f, m in enumerate(present):
            ys, xs = np.nonzero(m)
            if len(xs):
                boxes[f] = (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1)
        attrs = readings.get(frames[0].tobytes(), {})
        return SimpleNamespace(
            present=present.any(axis=(1, 2)),
            boxes=boxes,
            masks=present,
            centres=np.stack([(boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2], 1),
            n_components=present.any(axis=(1, 2)).astype(int),
            **{k: attrs.get(k) for k in ("colour", "shape", "texture", "background", "motion")},
        )

    import customvid.metrics.detector as det

    monkeypatch.setattr(det, "probe_video", probe_video)
    monkeypatch.setattr(det, "probe_available", lambda: None)
    return readings


def _byte_vocab() -> dict[str, int]:
    from transformers.convert_slow_tokenizer import bytes_to_unicode

    chars = list(bytes_to_unicode().values())
    vocab = {c: i for i, c in enumerate(chars)}
    vocab.update({c + "</w>": len(chars) + i for i, c in enumerate(chars)})
    vocab["<|startoftext|>"] = len(vocab)
    vocab["<|endoftext|>"] = len(vocab)
    return vocab


@pytest.fixture(scope="session")
def tiny_clip_dir(tmp_path_factory):
    """A randomly initialised tiny CLIPModel + byte-level CLIP tokenizer, saved with save_pretrained."""
    import torch
    from transformers import CLIPConfig, CLIPModel, CLIPTokenizer

    root = tmp_path_factory.mktemp("tiny_clip")
    vocab = _byte_vocab()
    (root / "vocab.json").write_text(json.dumps(vocab))
    (root / "merges.txt").write_text("#version: 0.2\n")
    tok = CLIPTokenizer(str(root / "vocab.json"), str(root / "merges.txt"))
    folder = root / "clip"
    torch.manual_seed(0)
    eos = vocab["<|endoftext|>"]
    config = CLIPConfig(
        text_config=dict(
            vocab_size=len(vocab),
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=2,
            max_position_embeddings=77,
            bos_token_id=eos - 1,
            eos_token_id=eos,
            pad_token_id=eos,
        ),
        vision_config=dict(
            image_size=32,
            patch_size=8,
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=2,
        ),
        projection_dim=16,
    )
    CLIPModel(config).eval().save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_vit_dir(tmp_path_factory):
    """A randomly initialised tiny ViT (DINO-style backbone) saved with save_pretrained."""
    import torch
    from transformers import ViTConfig, ViTModel

    folder = tmp_path_factory.mktemp("tiny_vit") / "vit"
    torch.manual_seed(1)
    config = ViTConfig(
        image_size=32,
        patch_size=8,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
    )
    ViTModel(config).eval().save_pretrained(folder)
    return folder
