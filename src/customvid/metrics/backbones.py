"""Feature backbones for the similarity metrics, loaded from local checkpoint folders only (never downloaded).

- CLIP: a transformers `CLIPModel` folder with its tokenizer (the papers use ViT-B/32). Image features are
  the projected pooled vision output, text features the projected pooled text output. Preprocessing follows
  the folder's preprocessor_config.json when present (resize shortest side, centre crop, mean/std), else
  CLIP's defaults at the model's image size: shortest side -> image_size (bicubic), centre crop, OpenAI CLIP
  mean/std.
- DINO: a transformers ViT (`ViTModel`, e.g. facebook/dino-vits16) or DINOv2 (`Dinov2Model`) folder; the
  feature is the CLS token of the last hidden state (after the final layer norm, before any pooler).
  Preprocessing as in METHODS.md section 6: shortest side -> 256 (bicubic), centre crop 224, ImageNet
  mean/std. For a model whose image size is not 224 (e.g. tiny test models) both sizes scale with it:
  crop = image_size, resize = round(image_size * 256 / 224); DINOv2 (which interpolates position embeddings)
  uses crop 224.

Both backbones embed one batch per call; `EvalContext.embed_images` does the batching.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from customvid.errors import CustomvidError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
DINO_TYPES = ("vit", "dinov2", "dinov2_with_registers")


def preprocess(images: list[np.ndarray], resize: int, crop: int, mean, std) -> torch.Tensor:
    """uint8 [H, W, 3] images -> float [N, 3, crop, crop]: shortest side to `resize` (bicubic, aspect kept),
    centre crop `crop` x `crop`, scale to [0, 1], normalise with mean/std."""
    out = np.empty((len(images), crop, crop, 3), np.float32)
    for i, img in enumerate(images):
        pil = Image.fromarray(np.asarray(img, dtype=np.uint8))
        w, h = pil.size
        scale = resize / min(w, h)
        nw, nh = max(crop, round(w * scale)), max(crop, round(h * scale))
        pil = pil.resize((nw, nh), Image.BICUBIC)
        left, top = (nw - crop) // 2, (nh - crop) // 2
        out[i] = np.asarray(pil.crop((left, top, left + crop, top + crop)), dtype=np.float32) / 255.0
    out = (out - np.float32(mean)) / np.float32(std)
    return torch.from_numpy(out).permute(0, 3, 1, 2).contiguous()


def check_folder(path, what: str) -> Path:
    """The checkpoint folder as a Path; CustomvidError when it is missing or has no config.json."""
    p = Path(path)
    if not p.is_dir():
        raise CustomvidError(
            f"{what} checkpoint folder {str(p)!r} does not exist (give a local folder; nothing is downloaded)"
        )
    if not (p / "config.json").is_file():
        raise CustomvidError(f"{what} checkpoint folder {str(p)!r} has no config.json")
    return p


def _size(value, default: int) -> int:
    if value is None:
        return default
    if isinstance(value, int | float):
        return int(value)
    if isinstance(value, dict):
        for key in ("shortest_edge", "height", "width"):
            if key in value:
                return int(value[key])
    return default


class ClipBackbone:
    def __init__(self, model, tokenizer, resize: int, crop: int, mean=CLIP_MEAN, std=CLIP_STD, device="cpu"):
        self.model = model.to(device).eval().requires_grad_(False)
        self.tokenizer = tokenizer
        self.resize, self.crop, self.mean, self.std = resize, crop, mean, std
        self.device = device
        self.max_length = int(model.config.text_config.max_position_embeddings)

    @torch.inference_mode()
    def embed_images(self, images: list[np.ndarray]) -> np.ndarray:
        pixels = preprocess(images, self.resize, self.crop, self.mean, self.std).to(self.device)
        pooled = self.model.vision_model(pixel_values=pixels).pooler_output
        return self.model.visual_projection(pooled).float().cpu().numpy()

    @torch.inference_mode()
    def embed_texts(self, texts: list[str]) -> np.ndarray:
        batch = self.tokenizer(
            list(texts), padding=True, truncation=True, max_length=self.max_length, return_tensors="pt"
        )
        pooled = self.model.text_model(
            input_ids=batch["input_ids"].to(self.device),
            attention_mask=batch["attention_mask"].to(self.device),
        ).pooler_output
        return self.model.text_projection(pooled).float().cpu().numpy()


class DinoBackbone:
    def __init__(self, model, resize: int, crop: int, mean=IMAGENET_MEAN, std=IMAGENET_STD, device="cpu"):
        self.model = model.to(device).eval().requires_grad_(False)
        self.resize, self.crop, self.mean, self.std = resize, crop, mean, std
        self.device = device

    @torch.inference_mode()
    def embed_images(self, images: list[np.ndarray]) -> np.ndarray:
        pixels = preprocess(images, self.resize, self.crop, self.mean, self.std).to(self.device)
        return self.model(pixel_values=pixels).last_hidden_state[:, 0].float().cpu().numpy()


def load_clip(path, device: str = "cpu") -> ClipBackbone:
    """A CLIPModel + tokenizer from a local folder (as written by save_pretrained)."""
    from transformers import AutoTokenizer, CLIPModel

    folder = check_folder(path, "CLIP")
    try:
        model = CLIPModel.from_pretrained(folder, local_files_only=True)
        tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
    except (OSError, ValueError, KeyError) as err:
        raise CustomvidError(
            f"cannot load a CLIPModel and its tokenizer from {str(folder)!r}: {err}"
        ) from err
    image_size = int(model.config.vision_config.image_size)
    resize, crop, mean, std = image_size, image_size, CLIP_MEAN, CLIP_STD
    pre = folder / "preprocessor_config.json"
    if pre.is_file():
        cfg = json.loads(pre.read_text())
        resize = _size(cfg.get("size"), image_size)
        crop = _size(cfg.get("crop_size"), image_size) if cfg.get("do_center_crop", True) else resize
        mean = tuple(cfg.get("image_mean", CLIP_MEAN))
        std = tuple(cfg.get("image_std", CLIP_STD))
    return ClipBackbone(model, tokenizer, resize, crop, mean, std, device)


def load_dino(path, device: str = "cpu") -> DinoBackbone:
    """A DINO ViT (ViTModel) or DINOv2 (Dinov2Model) from a local folder; features are the CLS token."""
    from transformers import AutoConfig, AutoModel

    folder = check_folder(path, "DINO")
    try:
        config = AutoConfig.from_pretrained(folder, local_files_only=True)
    except (OSError, ValueError, KeyError) as err:
        raise CustomvidError(f"cannot read the DINO config in {str(folder)!r}: {err}") from err
    if config.model_type not in DINO_TYPES:
        raise CustomvidError(
            f"{str(folder)!r} holds a {config.model_type!r} model; "
            f"DINO metrics need one of {', '.join(DINO_TYPES)}"
        )
    try:
        model = AutoModel.from_pretrained(folder, local_files_only=True)
    except (OSError, ValueError, KeyError) as err:
        raise CustomvidError(f"cannot load the DINO model from {str(folder)!r}: {err}") from err
    image_size = int(config.image_size)
    crop = min(224, image_size) if config.model_type.startswith("dinov2") else image_size
    resize = round(crop * 256 / 224)
    return DinoBackbone(model, resize, crop, device=device)
