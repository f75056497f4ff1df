"""Adapter methods by name (peft style): each method package registers its class here on import."""

from __future__ import annotations

import importlib

from customvid.errors import CustomvidError

# method name -> module that defines and registers it; imported on first use so `customvid --help` stays fast
METHOD_MODULES = {
    "lora": "customvid.adapters.subject_lora",
    "motion": "customvid.adapters.motion",
    "tokens": "customvid.adapters.id_tokens",
    "lora+tokens": "customvid.adapters.id_tokens",
    "zeroshot": "customvid.adapters.zeroshot",
}
_METHODS: dict[str, type] = {}


def register(cls: type) -> type:
    """Class decorator: `cls.method` becomes a known adapter method."""
    _METHODS[cls.method] = cls
    return cls


def method_names() -> list[str]:
    return sorted(METHOD_MODULES)


def get_method(name: str) -> type:
    if name not in METHOD_MODULES:
        raise CustomvidError(f"unknown adapter method {name!r}; known: {', '.join(method_names())}")
    if name not in _METHODS:
        importlib.import_module(METHOD_MODULES[name])
    return _METHODS[name]
