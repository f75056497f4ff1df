"""Ground-truth world scores from the world probe (`customvid.world.probe.probe_video`), against the record's
`subject` (the attribute record the video should show, as written by `customvid world render --record`).

- attr_<name> (colour, shape, texture, background): per video 1.0 when the probe reads the attribute the
  subject record names, else 0.0 (also when the probe reads nothing); None when the record has no subject or
  the subject does not name that attribute. Aggregate: accuracy over videos.
- motion_acc: the same for the motion class (`probe.motion` vs `subject["motion"]`).
- identity_match: identity match to the reference subject: 1.0 when the probe reads the reference's shape,
  colour and texture (and second colour, for two-colour textures). The reference identity is the subject
  record when it names shape, colour and texture; otherwise the probe's reading of the reference images
  (each probed as a one-frame video; per attribute, the majority over the images).
- trajectory_error: per video, the mean over frames of the distance between the centre of the probe's subject
  box and the centre of the target box, divided by the frame diagonal (as CD; a frame where the probe finds no
  subject counts 1.0). Targets are the record's target_boxes when given, else the ground-truth boxes rendered
  from the subject record (resampled to the video's frame count and scaled to its size). Box centres rather
  than mask centroids are compared on both sides so that asymmetric shapes carry no systematic offset.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import numpy as np

from customvid.metrics.base import EvalContext, MetricResult, register
from customvid.metrics.boxes import box_centres, centroid_distance
from customvid.metrics.records import EvalRecord

ATTRIBUTES = ("colour", "shape", "texture", "background")
IDENTITY_ATTRIBUTES = ("shape", "colour", "texture")


class AttributeAccuracy:
    requires = ("probe", "subject")
    higher_is_better = True

    def __init__(self, attribute: str, name: str | None = None, title: str | None = None):
        self.attribute = attribute
        self.name = name or f"attr_{attribute}"
        self.title = title or f"{attribute.capitalize()} accuracy"

    def compute(self, records: Sequence[EvalRecord], ctx: EvalContext) -> MetricResult:
        values: list[float | None] = []
        read: list[str | None] = []
        for r in ctx.iter_records(records, desc="probe"):
            want = (r.subject or {}).get(self.attribute)
            if want is None:
                values.append(None)
                read.append(None)
                continue
            got = getattr(ctx.probe(r), self.attribute)
            read.append(got)
            values.append(1.0 if got == want else 0.0)
        return MetricResult.from_values(self.name, values, probe_values=read)


def reference_identity(record: EvalRecord, ctx: EvalContext) -> dict | None:
    """{shape, colour, texture[, colour2]} the video should show (subject record, else reference images)."""
    subject = record.subject or {}
    if all(subject.get(a) is not None for a in IDENTITY_ATTRIBUTES):
        names = IDENTITY_ATTRIBUTES + (("colour2",) if subject.get("colour2") is not None else ())
        return {a: subject[a] for a in names}
    if not record.reference_images:
        return None
    probes = ctx.reference_probes(record)
    identity = {}
    for a in (*IDENTITY_ATTRIBUTES, "colour2"):
        votes = Counter(getattr(p, a, None) for p in probes)
        identity[a] = votes.most_common(1)[0][0]
    if any(identity[a] is None for a in IDENTITY_ATTRIBUTES):
        return None  # the references show no readable subject
    if identity["colour2"] is None:
        del identity["colour2"]
    return identity


class IdentityMatch:
    name = "identity_match"
    title = "Identity match"
    requires = ("probe", "subject_or_references")
    higher_is_better = True

    def compute(self, records: Sequence[EvalRecord], ctx: EvalContext) -> MetricResult:
        values: list[float | None] = []
        wanted: list[dict | None] = []
        for r in ctx.iter_records(records, desc="probe"):
            identity = reference_identity(r, ctx)
            wanted.append(identity)
            if identity is None:
                values.append(None)
                continue
            probe = ctx.probe(r)
            values.append(1.0 if all(getattr(probe, a, None) == v for a, v in identity.items()) else 0.0)
        return MetricResult.from_values(self.name, values, reference_identity=wanted)


def subject_boxes(subject: dict, n_frames: int, width: int, height: int) -> np.ndarray | None:
    """Ground-truth boxes [F, 4] of a full world attribute record at the video's frame count and size, or None
    when the record is not a renderable clip spec."""
    from customvid.world.render import render_clip
    from customvid.world.spec import ClipSpec

    try:
        spec = ClipSpec.from_dict(subject)
    except (TypeError, ValueError, KeyError):
        return None
    if spec.frames != n_frames:
        spec = spec.with_frames(n_frames)
    boxes = np.asarray(render_clip(spec).boxes, dtype=np.float64)
    return boxes * np.array([width / spec.width, height / spec.height] * 2)


class TrajectoryError:
    name = "trajectory_error"
    title = "Trajectory error"
    requires = ("probe",)
    higher_is_better = False

    def compute(self, records: Sequence[EvalRecord], ctx: EvalContext) -> MetricResult:
        values: list[float | None] = []
        detected: list[np.ndarray | None] = []
        targets: list[np.ndarray | None] = []
        for r in ctx.iter_records(records, desc="probe"):
            if ctx.has(r, "target_boxes"):
                target = r.target_boxes
            elif r.subject is not None:
                target = subject_boxes(r.subject, r.num_frames, r.width, r.height)
            else:
                target = None
            if target is None or not np.isfinite(target).all(axis=1).any():
                values.append(None)
                detected.append(None)
                targets.append(None)
                continue
            boxes = np.asarray(ctx.probe(r).boxes, dtype=np.float64)
            keep = np.isfinite(target).all(axis=1)
            d = centroid_distance(box_centres(boxes[keep]), box_centres(target[keep]), r.width, r.height)
            values.append(float(d.mean()))
            detected.append(boxes)
            targets.append(target)
        return MetricResult.from_values(self.name, values, probe_boxes=detected, target_boxes=targets)


METRICS = [register(AttributeAccuracy(a)) for a in ATTRIBUTES]
METRICS.append(register(AttributeAccuracy("motion", name="motion_acc", title="Motion class accuracy")))
METRICS.append(register(IdentityMatch()))
METRICS.append(register(TrajectoryError()))
