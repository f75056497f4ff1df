"""Box detectors for mIoU / CD. A detector maps a video to one box per frame; the default wraps the world
probe.

Any object with `detect(frames: uint8 [F, H, W, 3]) -> float [F, 4]` (x1, y1, x2, y2 px, NaN rows where
nothing is found) is a detector. On the command line `--detector module.path:Name` imports `Name`
(instantiated when it is a class).
"""

from __future__ import annotations

import importlib
from typing import Protocol, runtime_checkable

import numpy as np

from customvid.errors import CustomvidError


@runtime_checkable
class Detector(Protocol):
    def detect(self, frames: np.ndarray) -> np.ndarray: ...


def probe_available() -> str | None:
    """None when the world probe can be imported, else why not."""
    try:
        importlib.import_module("customvid.world.probe")
    except ImportError as err:
        return f"the world probe (customvid.world.probe) is not available: {err}"
    return None


def probe_video(frames: np.ndarray):
    from customvid.world.probe import probe_video as _probe

    return _probe(frames)


class ProbeDetector:
    """The world probe's subject box per frame (NaN where the subject is absent)."""

    name = "probe"

    def detect(self, frames: np.ndarray) -> np.ndarray:
        return np.asarray(probe_video(frames).boxes, dtype=np.float64)


def resolve_detector(spec) -> Detector | None:
    """'probe' -> ProbeDetector; 'module:attr' -> that object (a class is instantiated); a Detector -> itself;
    None -> None."""
    if spec is None:
        return None
    if isinstance(spec, str):
        if spec == "probe":
            return ProbeDetector()
        if ":" not in spec:
            raise CustomvidError(f"detector {spec!r} is neither 'probe' nor 'module.path:Name'")
        module_name, attr = spec.split(":", 1)
        try:
            obj = getattr(importlib.import_module(module_name), attr)
        except (ImportError, AttributeError) as err:
            raise CustomvidError(f"cannot import detector {spec!r}: {err}") from err
        spec = obj() if isinstance(obj, type) else obj
    if not callable(getattr(spec, "detect", None)):
        raise CustomvidError(f"detector {spec!r} has no detect(frames) method")
    return spec
