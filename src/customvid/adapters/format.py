"""The one on-disk adapter format: a folder with `adapter.json` (what it is, what it fits, how it was made) and
safetensors weights in the layouts diffusers already loads.

- `pytorch_lora_weights.safetensors`: LoRA tensors keyed `unet.<module>.lora_A.weight` / `lora_B.weight`, rank and
  alpha in the file's `lora_adapter_metadata` header -- the file `AnimateDiffPipeline.load_lora_weights(folder)`
  reads (diffusers' own writer produces it).
- `learned_embeds.safetensors`: new token rows `{token: [n, D]}`, diffusers' textual-inversion layout.
- `<name>.pt` (on request, token methods): the same rows in A1111's `string_to_param` layout, one file per token
  (A1111 names an embedding by its file: "<sks>" becomes `sks.pt`, written "sks" in its prompts).
- `comfyui_lora.safetensors` (AnimateDiff bases): the same LoRA with kohya keys, for ComfyUI.
- `weights.safetensors`: anything else a method trains (full temporal weights, reference attention, ...).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import load_file

import customvid
from customvid.errors import CustomvidError

FORMAT = "customvid-adapter/1"
ADAPTER_JSON = "adapter.json"
LORA_FILE = "pytorch_lora_weights.safetensors"
TOKENS_FILE = "learned_embeds.safetensors"
WEIGHTS_FILE = "weights.safetensors"
# kohya-style keys (`lora_unet_<module with _>.lora_down/.lora_up/.alpha`), the LoRA layout ComfyUI's loader maps
# onto an SD1.5 UNet (AnimateDiff's spatial layers carry the SD1.5 names); written for AnimateDiff bases only
KOHYA_FILE = "comfyui_lora.safetensors"
# config keys that say where a model came from, not what it computes
_PROVENANCE_KEYS = {"_name_or_path", "_diffusers_version", "_use_default_values"}


def unet_config_hash(unet: torch.nn.Module) -> str:
    """sha256 of the UNet's architecture config (class name included): equal hashes, interchangeable layers."""
    config = {k: v for k, v in dict(unet.config).items() if k not in _PROVENANCE_KEYS}
    text = json.dumps(config, sort_keys=True, default=list)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def model_identity(components) -> dict[str, Any]:
    return {
        "name": Path(components.source).name if components.source != "<memory>" else "<memory>",
        "kind": components.kind,
        "unet_class": type(components.unet).__name__,
        "unet_config_sha256": unet_config_hash(components.unet),
        "text_kind": components.text_kind,
        "text_dim": int(components.text_encoder.get_input_embeddings().weight.shape[1]),
    }


@dataclass
class AdapterFiles:
    """An adapter folder as read from disk (validated on read; tensors loaded lazily by the method)."""

    path: Path
    meta: dict[str, Any]
    lora: dict[str, torch.Tensor] = field(default_factory=dict)
    lora_metadata: dict[str, Any] = field(default_factory=dict)
    tokens: dict[str, torch.Tensor] = field(default_factory=dict)
    weights: dict[str, torch.Tensor] = field(default_factory=dict)

    @property
    def method(self) -> str:
        return self.meta["method"]


def _load(path: Path) -> dict[str, torch.Tensor]:
    try:
        return load_file(path)
    except Exception as err:  # safetensors raises its own error types for truncated / foreign files
        raise CustomvidError(f"{path}: not a readable safetensors file ({str(err).splitlines()[0]})") from err


def read_adapter(path: str | Path) -> AdapterFiles:
    """Read and check an adapter folder; every problem is one line naming the file and what is wrong."""
    folder = Path(path)
    meta_path = folder / ADAPTER_JSON
    if not folder.is_dir():
        raise CustomvidError(f"adapter folder {folder} does not exist")
    if not meta_path.is_file():
        raise CustomvidError(f"{folder} is not an adapter folder (no {ADAPTER_JSON})")
    try:
        meta = json.loads(meta_path.read_text())
    except json.JSONDecodeError as err:
        raise CustomvidError(f"{meta_path} is not valid JSON: {err}") from err
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        found = meta.get("format") if isinstance(meta, dict) else meta
        raise CustomvidError(f"{meta_path}: unknown adapter format {found!r}; expected {FORMAT}")
    for key in ("method", "base_model", "files"):
        if key not in meta:
            raise CustomvidError(f"{meta_path} lacks {key!r}")
    files = AdapterFiles(folder, meta)
    for name in meta["files"]:
        if not (folder / name).is_file():
            raise CustomvidError(f"{folder}: {ADAPTER_JSON} lists {name}, which is missing")
    if LORA_FILE in meta["files"]:
        files.lora = _load(folder / LORA_FILE)
        with safe_open(folder / LORA_FILE, framework="pt") as f:
            raw = (f.metadata() or {}).get("lora_adapter_metadata")
        files.lora_metadata = json.loads(raw) if raw else {}
    if TOKENS_FILE in meta["files"]:
        files.tokens = _load(folder / TOKENS_FILE)
    if WEIGHTS_FILE in meta["files"]:
        files.weights = _load(folder / WEIGHTS_FILE)
    return files


def check_fits(files: AdapterFiles, components) -> None:
    """Refuse an adapter made for another kind of model, in one line saying which property differs."""
    want, have = files.meta["base_model"], model_identity(components)
    for key, what in (("kind", "backbone"), ("text_kind", "text encoder"), ("text_dim", "text width")):
        if key in want and want[key] != have[key]:
            raise CustomvidError(
                f"adapter {files.path} was trained for a {what} {want[key]!r}, this model has {have[key]!r}"
            )


def base_meta(method: str, components, config: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "method": method,
        "config": config,
        "base_model": model_identity(components),
        "customvid_version": customvid.__version__,
        **extra,
    }


def kohya_lora(state: dict[str, torch.Tensor], alpha: float) -> dict[str, torch.Tensor]:
    """peft/diffusers LoRA tensors (`<module>.lora_A.weight`) -> kohya keys with one `alpha` per module."""
    out = {}
    for key, value in state.items():
        module, _, kind = key.rpartition(".lora_")
        name = "lora_unet_" + module.replace(".", "_")
        out[f"{name}.lora_down.weight" if kind == "A.weight" else f"{name}.lora_up.weight"] = value.contiguous()
        out[f"{name}.alpha"] = torch.tensor(float(alpha))
    return out


def a1111_embedding(token: str, rows: torch.Tensor, step: int) -> tuple[str, dict[str, Any]]:
    """(file name, contents) of a token's rows in A1111's textual-inversion layout (a plain dict of tensors,
    strings and ints: `torch.load(weights_only=True)` reads it, and so does diffusers' `load_textual_inversion`)."""
    name = token.strip("<>")
    contents = {
        "string_to_token": {"*": 265},  # A1111's placeholder id; its loader ignores the value
        "string_to_param": {"*": rows.detach().cpu().contiguous()},
        "name": name,
        "step": int(step),
        "sd_checkpoint": None,
        "sd_checkpoint_name": None,
    }
    return f"{name}.pt", contents
