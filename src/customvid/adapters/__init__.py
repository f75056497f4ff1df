"""Adapters: one package per method (config / layers / adapter), a registry keyed by method name, one folder
format (`format.py`), and loading several at once, each with its own weight or per-step schedule.

    from customvid.adapters import load_adapter
    subject = load_adapter("adapters/diamond", components, schedule="dws")
    video = generate(components, "a <sks> diamond moving left on a green background", adapters=[subject])
    subject.detach()  # the model is exactly the base model again
"""

from __future__ import annotations

import re
from pathlib import Path

from customvid.adapters.base import Adapter
from customvid.adapters.format import AdapterFiles, read_adapter
from customvid.adapters.registry import get_method, method_names, register
from customvid.errors import CustomvidError
from customvid.sampling.schedules import Schedule


def load_adapter(
    path: str | Path | AdapterFiles,
    components,
    schedule: str | float | Schedule | None = None,
    name: str | None = None,
) -> Adapter:
    """Read an adapter folder (or take one `read_adapter` returned), check it fits `components`, attach it
    (name: the folder's name, made unique) and set its schedule (None: the method's default, e.g. DWS for a
    subject LoRA)."""
    files = path if isinstance(path, AdapterFiles) else read_adapter(path)
    path = files.path
    cls = get_method(files.method)
    taken = {a.name for a in components.adapters}
    # peft keeps adapters in ModuleDicts: the name must be a plain identifier
    base = re.sub(r"\W", "_", name or Path(path).resolve().name or files.method)
    name, i = base, 1
    while name in taken:
        name, i = f"{base}_{i}", i + 1
    adapter = cls.from_files(files, name=name).load(files, components)
    if schedule is not None:
        adapter.set_schedule(schedule)
    return adapter


def detach_all(components) -> None:
    for adapter in list(reversed(components.adapters)):
        adapter.detach()


__all__ = [
    "Adapter",
    "AdapterFiles",
    "CustomvidError",
    "detach_all",
    "get_method",
    "load_adapter",
    "method_names",
    "read_adapter",
    "register",
]
