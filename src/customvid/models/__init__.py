"""Model loading: the `Components` record and backbone layer maps (UNet3DConditionModel / UNetMotionModel).

Exports resolve lazily (PEP 562) so that importing a light submodule such as `customvid.models.text`, e.g.
while the CLI builds its parser, does not pull in diffusers.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS = {
    "backbones": [
        "BACKBONES",
        "CROSS_ATTENTION_KV",
        "UNET3D_TEMPORAL_CONVS",
        "BackboneSpec",
        "backbone_spec",
        "cross_attention_kv_layers",
        "find_modules",
        "spatial_attention_layers",
        "spatial_attention_regex",
        "temporal_layers",
        "temporal_parameters",
        "temporal_roots",
        "unet_forward",
    ],
    "components": [
        "EMBEDDED_DIR",
        "Components",
        "embedded_components",
        "load_components",
        "merge_motion_unet",
        "save_embedded",
    ],
}
_MODULE_OF = {name: module for module, names in _EXPORTS.items() for name in names}
__all__ = sorted(_MODULE_OF)

if TYPE_CHECKING:
    from customvid.models.backbones import (  # noqa: F401
        BACKBONES,
        CROSS_ATTENTION_KV,
        UNET3D_TEMPORAL_CONVS,
        BackboneSpec,
        backbone_spec,
        cross_attention_kv_layers,
        find_modules,
        spatial_attention_layers,
        spatial_attention_regex,
        temporal_layers,
        temporal_parameters,
        temporal_roots,
        unet_forward,
    )
    from customvid.models.components import (  # noqa: F401
        EMBEDDED_DIR,
        Components,
        embedded_components,
        load_components,
        merge_motion_unet,
        save_embedded,
    )


def __getattr__(name: str) -> Any:
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module 'customvid.models' has no attribute {name!r}")
    return getattr(importlib.import_module(f"customvid.models.{module}"), name)
