"""The common interface of every metric, the shared evaluation context (lazy backbones, cached features and
probes, batching) and the registry of metrics by name."""

from __future__ import annotations

import math
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np

from customvid.errors import CustomvidError
from customvid.metrics.records import EvalRecord

# What a metric may require. Global requirements (a backbone, the probe, a detector) skip the whole metric
# when missing; per-record requirements (data fields) give None for the records that lack them, and skip the
# metric when no record has them.
GLOBAL_REQUIREMENTS = ("clip", "dino", "probe", "detector")
RECORD_REQUIREMENTS = ("target_boxes", "reference_images", "subject", "multi_frame", "subject_or_references")

_RECORD_CHECKS: dict[str, Callable[[EvalRecord], bool]] = {
    "target_boxes": lambda r: (
        r.target_boxes is not None and bool(np.isfinite(r.target_boxes).all(axis=1).any())
    ),
    "reference_images": lambda r: len(r.reference_images) > 0,
    "subject": lambda r: r.subject is not None,
    "multi_frame": lambda r: r.num_frames >= 2,
    "subject_or_references": lambda r: r.subject is not None or len(r.reference_images) > 0,
}
_RECORD_MISSING = {
    "target_boxes": "no record has target_boxes",
    "reference_images": "no record has reference_images",
    "subject": "no record has a subject attribute record",
    "multi_frame": "no video has two or more frames",
    "subject_or_references": "no record has a subject attribute record or reference images",
}


@dataclass
class MetricResult:
    """One metric over a set of videos: a value per video (None where it does not apply) and the aggregate.

    A skipped metric has skipped_reason set, aggregate None and every per-video value None: never a silent
    zero.
    """

    name: str
    per_video: list[float | None]
    aggregate: float | None
    skipped_reason: str | None = None
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def n(self) -> int:
        return sum(v is not None for v in self.per_video)

    @classmethod
    def skipped(cls, name: str, n_videos: int, reason: str) -> MetricResult:
        return cls(name, [None] * n_videos, None, reason)

    @classmethod
    def from_values(cls, name: str, values: Sequence[float | None], **details) -> MetricResult:
        """Aggregate = mean over the videos that have a value."""
        clean = [None if v is None or not math.isfinite(v) else float(v) for v in values]
        have = [v for v in clean if v is not None]
        return cls(name, clean, float(np.mean(have)) if have else None, None, dict(details))


@runtime_checkable
class Metric(Protocol):
    name: str  # key in reports, e.g. "clip_t"
    title: str  # display name, e.g. "CLIP-T"
    requires: tuple[str, ...]
    higher_is_better: bool

    def compute(self, records: Sequence[EvalRecord], ctx: EvalContext) -> MetricResult: ...


# --------------------------------------------------------------------------------------------------- registry

_REGISTRY: dict[str, Metric] = {}


def register(metric: Metric) -> Metric:
    if metric.name in _REGISTRY:
        raise ValueError(f"metric {metric.name!r} is already registered")
    _REGISTRY[metric.name] = metric
    return metric


def get_metric(name: str) -> Metric:
    _load_builtin()
    try:
        return _REGISTRY[name]
    except KeyError:
        raise KeyError(f"unknown metric {name!r}; known: {', '.join(_REGISTRY)}") from None


def all_metrics() -> list[Metric]:
    """Every registered metric: the built-in ones in report order, then any others in registration order."""
    from customvid.metrics.builtin import ORDER

    _load_builtin()
    rank = {name: i for i, name in enumerate(ORDER)}
    return sorted(_REGISTRY.values(), key=lambda m: rank.get(m.name, len(rank)))


def metric_names() -> list[str]:
    return [m.name for m in all_metrics()]


def _load_builtin() -> None:
    import customvid.metrics.builtin  # noqa: F401  (registers the built-in metrics on import)


# ---------------------------------------------------------------------------------------------------- context


class _Lazy:
    """A backbone given as a folder and loaded on first use."""

    def __init__(self, path, loader: Callable, device: str):
        self.path, self.loader, self.device = path, loader, device
        self.value = None

    def get(self):
        if self.value is None:
            self.value = self.loader(self.path, device=self.device)
        return self.value


class EvalContext:
    """Shared state of one evaluation: backbones (objects, folders loaded lazily, or None), the box detector,
    the batch size, and caches of features and probe results so each is computed once for all metrics.

    Backbone objects need `embed_images(list of uint8 [H, W, 3]) -> float [N, D]` (one batch) and, for CLIP,
    `embed_texts(list of str) -> float [N, D]`; see `customvid.metrics.backbones`.
    """

    def __init__(
        self,
        records: Sequence[EvalRecord],
        clip=None,
        dino=None,
        detector="probe",
        batch_size: int = 32,
        device: str = "cpu",
        progress: bool = False,
    ):
        from customvid.metrics import backbones
        from customvid.metrics.detector import resolve_detector

        for path, what in ((clip, "CLIP"), (dino, "DINO")):
            if _is_path(path):
                backbones.check_folder(path, what)  # fail now, not after minutes of other metrics
        self.records = list(records)
        self._pos = {id(r): i for i, r in enumerate(self.records)}
        self.batch_size = max(1, int(batch_size))
        self.device = device
        self.progress = progress
        self._backbones = {
            "clip": _Lazy(clip, backbones.load_clip, device) if _is_path(clip) else clip,
            "dino": _Lazy(dino, backbones.load_dino, device) if _is_path(dino) else dino,
        }
        self._detector_arg = detector
        # a user's detector is imported now (cheap, and errors show before any work); the probe lazily
        self._detector = resolve_detector(detector) if detector is not None and detector != "probe" else None
        self._cache: dict[tuple, Any] = {}

    # ------------------------------------------------------------------------------------------- availability

    def missing(self, requirement: str) -> str | None:
        """Why a global requirement is not met, or None when it is."""
        if requirement == "clip" and self._backbones["clip"] is None:
            return "no CLIP checkpoint given (pass --clip DIR, a local transformers CLIPModel folder)"
        if requirement == "dino" and self._backbones["dino"] is None:
            return "no DINO checkpoint given (pass --dino DIR, a local transformers ViT/DINOv2 folder)"
        if requirement == "probe":
            from customvid.metrics.detector import probe_available

            return probe_available()
        if requirement == "detector":
            if self._detector_arg is None:
                return "no box detector given"
            if self._detector_arg == "probe":
                from customvid.metrics.detector import probe_available

                reason = probe_available()
                return None if reason is None else f"default detector unavailable: {reason}"
        return None

    def skip_reason(self, metric: Metric, records: Sequence[EvalRecord]) -> str | None:
        for req in metric.requires:
            if req in GLOBAL_REQUIREMENTS:
                reason = self.missing(req)
                if reason is not None:
                    return reason
            elif req in _RECORD_CHECKS:
                if not any(_RECORD_CHECKS[req](r) for r in records):
                    return _RECORD_MISSING[req]
            else:
                raise ValueError(f"metric {metric.name!r} has unknown requirement {req!r}")
        return None

    @staticmethod
    def has(record: EvalRecord, requirement: str) -> bool:
        return _RECORD_CHECKS[requirement](record)

    def backbone(self, name: str):
        b = self._backbones[name]
        return b.get() if isinstance(b, _Lazy) else b

    @property
    def detector(self):
        if self._detector is None:
            from customvid.metrics.detector import resolve_detector

            self._detector = resolve_detector(self._detector_arg)
        return self._detector

    # ----------------------------------------------------------------------------------------------- features

    def _index(self, record: EvalRecord) -> int:
        try:
            return self._pos[id(record)]
        except KeyError:
            raise ValueError("record is not part of this evaluation context") from None

    def image_features(self, backbone: str, kind: str, record: EvalRecord) -> np.ndarray | None:
        """L2-normalised features [n, D] of one record's `frames`, `regions` (frame crops inside the target
        box; frames without a target box are left out) or `references`; None when there is nothing to embed.
        The first call embeds that kind for every record of the context at once, in batches."""
        index = self._index(record)
        key = (backbone, kind)
        if key not in self._cache:
            self._cache[key] = self._embed_all(backbone, kind)
        return self._cache[key][index]

    def _embed_all(self, backbone: str, kind: str) -> list[np.ndarray | None]:
        from customvid.metrics.boxes import crop_box

        images: list[np.ndarray] = []
        owners: list[int] = []
        for i, r in enumerate(self.records):
            if kind == "frames":
                items = list(r.frames)
            elif kind == "references":
                items = r.reference_images
            elif kind == "regions":
                items = []
                if r.target_boxes is not None:
                    items = [
                        crop_box(f, b)
                        for f, b in zip(r.frames, r.target_boxes, strict=True)
                        if np.isfinite(b).all()
                    ]
            else:
                raise ValueError(f"unknown image kind {kind!r}")
            images.extend(items)
            owners.extend([i] * len(items))
        feats = self.embed_images(backbone, images, desc=f"{backbone} {kind}")
        out: list[np.ndarray | None] = []
        owners_arr = np.asarray(owners, dtype=int)
        for i in range(len(self.records)):
            sel = feats[owners_arr == i] if len(owners_arr) else feats[:0]
            out.append(sel if len(sel) else None)
        return out

    def embed_images(self, backbone: str, images: list[np.ndarray], desc: str = "") -> np.ndarray:
        """Embed images in batches of `batch_size`; returns L2-normalised float64 [N, D]."""
        model = self.backbone(backbone)
        chunks = []
        starts = range(0, len(images), self.batch_size)
        for s in _progress(starts, desc=desc, enabled=self.progress and len(starts) > 1):
            chunks.append(np.asarray(model.embed_images(images[s : s + self.batch_size]), dtype=np.float64))
        if not chunks:
            return np.zeros((0, 1))
        return l2_normalise(np.concatenate(chunks))

    def text_features(self, record: EvalRecord) -> np.ndarray:
        """L2-normalised CLIP text feature [D] of the record's prompt (all prompts embedded at once)."""
        if ("clip", "text") not in self._cache:
            model = self.backbone("clip")
            prompts = [r.prompt for r in self.records]
            chunks = [
                np.asarray(model.embed_texts(prompts[s : s + self.batch_size]), dtype=np.float64)
                for s in range(0, len(prompts), self.batch_size)
            ]
            self._cache[("clip", "text")] = l2_normalise(np.concatenate(chunks))
        return self._cache[("clip", "text")][self._index(record)]

    # ------------------------------------------------------------------------------------- probe and detector

    def probe(self, record: EvalRecord):
        """The world probe's reading of the record's video (cached)."""
        key = ("probe", self._index(record))
        if key not in self._cache:
            from customvid.metrics.detector import probe_video

            self._cache[key] = probe_video(record.frames)
        return self._cache[key]

    def reference_probes(self, record: EvalRecord) -> list:
        """The world probe's reading of each reference image (as a one-frame video), cached."""
        key = ("reference_probes", self._index(record))
        if key not in self._cache:
            from customvid.metrics.detector import probe_video

            self._cache[key] = [probe_video(img[None]) for img in record.reference_images]
        return self._cache[key]

    def detections(self, record: EvalRecord) -> np.ndarray:
        """Detected boxes [F, 4] (NaN rows where nothing was found), from the detector (cached). The default
        probe detector shares its probe run with the world scores."""
        from customvid.metrics.detector import ProbeDetector

        key = ("detections", self._index(record))
        if key not in self._cache:
            det = self.detector
            if isinstance(det, ProbeDetector):
                boxes = self.probe(record).boxes
            else:
                boxes = det.detect(record.frames)
            boxes = np.asarray(boxes, dtype=np.float64)
            if boxes.shape != (record.num_frames, 4):
                raise CustomvidError(
                    f"detector returned boxes of shape {boxes.shape} for {record.num_frames} frames"
                )
            self._cache[key] = boxes
        return self._cache[key]

    def iter_records(self, records: Sequence[EvalRecord], desc: str):
        return _progress(records, desc=desc, enabled=self.progress and len(records) > 1)


def l2_normalise(x: np.ndarray, axis: int = -1) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    norm = np.linalg.norm(x, axis=axis, keepdims=True)
    return x / np.maximum(norm, 1e-12)


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return float(a @ b / max(np.linalg.norm(a) * np.linalg.norm(b), 1e-12))


def _is_path(x) -> bool:
    import os

    return isinstance(x, str | os.PathLike)


def _progress(items, desc: str, enabled: bool):
    if not enabled:
        return items
    from tqdm import tqdm

    return tqdm(items, desc=desc, file=sys.stderr, leave=False)
