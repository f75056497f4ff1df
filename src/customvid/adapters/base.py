"""What every adapter method implements, and the shared load / save / sampling plumbing.

An `Adapter` is attached to one `Components` at a time under a unique name; its weight (a number or a per-step
schedule from `customvid.sampling.schedules`) is applied by the sampling loop through `set_weight`. Methods
subclass it and fill in `_attach` / `_detach` / `_state` / `_load_state`.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, ClassVar

import torch

from customvid.adapters.format import (
    KOHYA_FILE,
    LORA_FILE,
    TOKENS_FILE,
    WEIGHTS_FILE,
    AdapterFiles,
    a1111_embedding,
    base_meta,
    check_fits,
    kohya_lora,
)
from customvid.errors import CustomvidError
from customvid.io import atomic_write_dir, write_json_atomic
from customvid.sampling.schedules import Schedule, weight_schedule


def plain_name(name: str) -> str | None:
    """A model tensor's name as the bare model spells it, whatever adapters wrap its layer (peft's `base_layer`, a
    weighted delta's parametrization); None for a tensor an adapter added (LoRA factors, deltas)."""
    if ".lora_" in name or ".delta" in name:
        return None
    return name.replace(".parametrizations.", ".").replace(".original", "").replace(".base_layer.", ".")


class Adapter:
    method: ClassVar[str]
    Config: ClassVar[type]
    default_schedule: ClassVar[str] = "constant:1"
    # write the LoRA with kohya keys too on AnimateDiff bases (ComfyUI's loader maps SD1.5 UNet names: spatial only)
    kohya_export: ClassVar[bool] = True

    def __init__(self, config: Any, name: str | None = None):
        self.config = config
        self.name = name or self.method
        self.components = None
        self.weight = 1.0
        self._applied = False  # the current weight is in force on the model
        self.training = False  # its parameters require grad only while training
        self.schedule: Schedule = weight_schedule(self.default_schedule)

    # -- to implement -------------------------------------------------------------------------------------
    def _attach(self, components) -> None:
        raise NotImplementedError

    def _detach(self, components) -> None:
        raise NotImplementedError

    def _apply_weight(self, weight: float) -> None:
        raise NotImplementedError

    def _state(self) -> dict[str, dict[str, torch.Tensor]]:
        """{"lora": ..., "lora_metadata": ..., "tokens": ..., "weights": ...}: what to save (any subset; LoRA
        tensors come with their peft LoraConfig as a dict, which diffusers' loaders read from the file header)."""
        raise NotImplementedError

    def _load_state(self, files: AdapterFiles) -> None:
        raise NotImplementedError

    def trainable_parameters(self) -> list[torch.nn.Parameter]:
        raise NotImplementedError

    # -- shared -------------------------------------------------------------------------------------------
    def attach(self, components) -> Adapter:
        if self.components is not None:
            raise CustomvidError(f"adapter {self.name!r} is already attached")
        self._attach(components)
        self.components = components
        self._applied = False
        components.adapters.append(self)
        self.set_weight(1.0)
        return self

    def detach(self) -> None:
        if self.components is None:
            return
        self._detach(self.components)
        self.components.adapters.remove(self)
        self.components = None

    def set_weight(self, weight: float) -> None:
        if self.components is None:
            raise CustomvidError(f"adapter {self.name!r} is not attached to a model")
        if float(weight) == self.weight and self._applied:
            return  # most steps of a schedule keep the weight: no pass over the layers
        self.weight = float(weight)
        self._apply_weight(self.weight)
        self._applied = True

    def train(self, mode: bool = True) -> Adapter:
        self.training = mode
        for p in self.trainable_parameters():
            p.requires_grad_(mode)
        return self

    def set_schedule(self, spec: str | float | Schedule) -> Adapter:
        self.schedule = weight_schedule(spec)
        return self

    def save(
        self, path: str | Path, extra: dict[str, Any] | None = None, overwrite: bool = False, a1111: bool = False
    ) -> Path:
        """Write the adapter folder atomically (complete or untouched); `a1111`: the token rows also in A1111's
        layout."""
        from diffusers import AnimateDiffPipeline
        from safetensors.torch import save_file

        if self.components is None:
            raise CustomvidError(f"adapter {self.name!r} is not attached to a model")
        path = Path(path)
        if path.exists() and not overwrite:
            raise CustomvidError(f"{path} exists; pass --overwrite to replace it")
        state = self._state()
        files = []
        config = dataclasses.asdict(self.config)
        with atomic_write_dir(path) as tmp:
            if state.get("lora"):
                # diffusers' own writer: the exact file `load_lora_weights(folder)` reads back
                AnimateDiffPipeline.save_lora_weights(
                    tmp,
                    unet_lora_layers=state["lora"],
                    unet_lora_adapter_metadata=state["lora_metadata"],
                    safe_serialization=True,
                )
                files.append(LORA_FILE)
                if self.components.kind == "unet_motion" and self.kohya_export:
                    alpha = state["lora_metadata"]["lora_alpha"]
                    save_file(kohya_lora(state["lora"], alpha), tmp / KOHYA_FILE)
                    files.append(KOHYA_FILE)
            if state.get("tokens"):
                save_file({k: v.contiguous() for k, v in state["tokens"].items()}, tmp / TOKENS_FILE)
                files.append(TOKENS_FILE)
                steps = (extra or {}).get("training", {}).get("steps_done", 0)
                for token, rows in state["tokens"].items() if a1111 else ():
                    name, contents = a1111_embedding(token, rows, steps)
                    torch.save(contents, tmp / name)
                    files.append(name)
            if state.get("weights"):
                save_file({k: v.contiguous() for k, v in state["weights"].items()}, tmp / WEIGHTS_FILE)
                files.append(WEIGHTS_FILE)
            meta = base_meta(self.method, self.components, config, files=files, **(extra or {}))
            write_json_atomic(tmp / "adapter.json", meta)
        return path

    @classmethod
    def from_files(cls, files: AdapterFiles, name: str | None = None) -> Adapter:
        try:
            config = cls.Config(**files.meta["config"])
        except TypeError as err:
            raise CustomvidError(f"{files.path}/adapter.json: bad {cls.method} config ({err})") from err
        return cls(config, name=name)

    def load(self, files: AdapterFiles, components) -> Adapter:
        check_fits(files, components)
        self.attach(components)
        try:
            self._load_state(files)
        except CustomvidError as err:
            self.detach()
            raise CustomvidError(f"adapter {files.path}: {err}") from None
        return self


