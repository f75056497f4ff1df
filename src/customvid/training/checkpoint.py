"""Resumable training state: written to a temp folder and renamed, so an interrupt never leaves a torn checkpoint.

Model tensors go to safetensors; optimizer and RNG state to a torch file read back with weights_only=True, so
loading a checkpoint never executes code.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from customvid.errors import CustomvidError

LATEST = "checkpoint"


def save_checkpoint(
    run_dir: Path, step: int, modules: dict[str, torch.nn.Module], optimizer, extra_state: dict
) -> Path:
    run_dir = Path(run_dir)
    tmp = run_dir / f".{LATEST}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for name, module in modules.items():
        save_file(
            {k: v.detach().contiguous().cpu() for k, v in module.state_dict().items()}, tmp / f"{name}.safetensors"
        )
    torch.save({"optimizer": optimizer.state_dict(), **extra_state}, tmp / "state.pt")
    (tmp / "step.json").write_text(json.dumps({"step": step}))
    final = run_dir / LATEST
    old = run_dir / f".{LATEST}.old"
    shutil.rmtree(old, ignore_errors=True)
    if final.exists():
        os.replace(final, old)
    os.replace(tmp, final)
    shutil.rmtree(old, ignore_errors=True)
    return final


def load_checkpoint(run_dir: Path, modules: dict[str, torch.nn.Module], optimizer) -> tuple[int, dict] | None:
    """Restore modules and optimizer in place; returns (step, extra_state), or None if there is no checkpoint."""
    ckpt = Path(run_dir) / LATEST
    if not ckpt.is_dir() and (Path(run_dir) / f".{LATEST}.old").is_dir():
        ckpt = Path(run_dir) / f".{LATEST}.old"  # interrupted between the two renames
    if not ckpt.is_dir():
        return None
    try:
        for name, module in modules.items():
            module.load_state_dict(load_file(ckpt / f"{name}.safetensors"))
        state = torch.load(ckpt / "state.pt", weights_only=True)
        step = json.loads((ckpt / "step.json").read_text())["step"]
    except (OSError, KeyError, RuntimeError, ValueError) as err:
        raise CustomvidError(f"checkpoint {ckpt} is unreadable ({err}); move it away to start afresh") from err
    optimizer.load_state_dict(state.pop("optimizer"))
    return step, state


def _flat(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        if isinstance(v, dict) and v:
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def check_run_config(
    run_dir: Path,
    want: dict,
    operational=(),
    defaults: dict | None = None,
    write: bool = True,
    hint: str = "use a new --out folder",
) -> None:
    """A run folder belongs to one recipe: resuming with different settings would silently mix two runs.
    `operational` keys (nested ones as "loop.steps") may differ; `defaults` are the values of keys added to a
    recipe after older runs were made. With write=False (readers) the folder must hold a run and is left as is."""
    path = Path(run_dir) / "config.json"
    if path.exists():
        have, defaults = _flat(json.loads(path.read_text())), defaults or {}
        diff = {
            k: (have.get(k, defaults.get(k)), v)
            for k, v in _flat(want).items()
            if k not in operational and have.get(k, defaults.get(k)) != v
        }
        if diff:
            raise CustomvidError(f"{run_dir} was trained with other settings {diff}; {hint}")
    elif not write:
        raise CustomvidError(f"{run_dir} holds no training run (no config.json)")
    if write:
        from customvid.io import write_json_atomic

        write_json_atomic(path, want)
