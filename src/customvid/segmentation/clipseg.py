"""CLIPSeg (transformers' CLIPSegForImageSegmentation) from a local folder, prompted with the class word.

Not measured: no CLIPSeg weights can be downloaded on the development machine, so THRESHOLD (0.4, slightly below
an even split because CLIPSeg's probabilities run low at object edges) is a judgement, not a measurement.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from customvid.errors import CustomvidError

THRESHOLD = 0.4  # on sigmoid(logits)
BATCH = 8
WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin",
                "pytorch_model.bin.index.json")


def check_folder(folder: str) -> Path:
    """The folder of a clipseg:PATH spec, checked (before any long work)."""
    path = Path(folder)
    if not folder:
        raise CustomvidError("clipseg needs a local model folder: clipseg:PATH")
    if not path.is_dir():
        raise CustomvidError(f"clipseg: {path} is not a folder")
    if not any((path / name).is_file() for name in WEIGHT_FILES):
        raise CustomvidError(f"clipseg: no CLIPSeg weights in {path} (model.safetensors or pytorch_model.bin)")
    return path


def _load(folder: str):
    path = check_folder(folder)
    from transformers import CLIPSegForImageSegmentation, CLIPSegProcessor

    try:
        model = CLIPSegForImageSegmentation.from_pretrained(path, local_files_only=True).eval()
        processor = CLIPSegProcessor.from_pretrained(path, local_files_only=True)
    except Exception as err:  # a user's folder fails in many ways (bad config, corrupt safetensors): one line
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise CustomvidError(f"clipseg: cannot load {path}: {reason}") from err
    return model, processor


def segment_clipseg(images: np.ndarray, folder: str, prompt: str | None) -> np.ndarray:
    """uint8 [N, H, W, 3] -> bool [N, H, W]: sigmoid(logits) >= THRESHOLD, resized to each image."""
    import torch

    if not prompt or not prompt.strip():
        raise CustomvidError("clipseg needs a prompt: the subject's class word")
    model, processor = _load(folder)
    n, h, w = images.shape[:3]
    probs = []
    for start in range(0, n, BATCH):
        chunk = list(images[start : start + BATCH])
        inputs = processor(text=[prompt] * len(chunk), images=chunk, return_tensors="pt", padding=True)
        with torch.no_grad():
            logits = model(**inputs).logits
        logits = logits.reshape(len(chunk), *logits.shape[-2:])  # a batch of one comes back squeezed
        probs.extend(torch.sigmoid(logits).float().numpy())
    return np.stack([cv2.resize(p, (w, h), interpolation=cv2.INTER_LINEAR) >= THRESHOLD for p in probs])
