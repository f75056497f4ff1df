"""Metrics through the common interface, with fake backbones / detectors / probe whose outputs are known."""

from __future__ import annotations

import math

import numpy as np
import pytest
from conftest import FixedDetector, square_video

from customvid.errors import CustomvidError
from customvid.metrics import (
    EvalRecord,
    MetricResult,
    all_metrics,
    evaluate_records,
    get_metric,
    metric_names,
)
from customvid.metrics.base import EvalContext

RED, GREEN = (230, 40, 40), (40, 200, 70)


def feat(img):  # what the fake backbone computes
    return np.asarray(img, dtype=np.float64).reshape(-1, 3).mean(0) / 255 + 0.01


def cos(a, b):
    return float(np.dot(a, b) / np.linalg.norm(a) / np.linalg.norm(b))


def unit(x):
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def two_records():
    fa, ba = square_video(5, 16, box=(2, 2, 8, 8), step=(1, 1), colour=RED, bg=GREEN)
    fb, bb = square_video(5, 16, box=(8, 4, 12, 8), step=(0, 1), colour=(60, 110, 255), bg=(0, 0, 0))
    ref = np.zeros((4, 4, 3), np.uint8)
    ref[:] = RED
    a = EvalRecord(fa, "red square", [ref], ba, id="a")
    b = EvalRecord(fb, "blue square", [], None, id="b")
    return a, b


def test_registry_lists_every_metric_in_report_order():
    names = metric_names()
    assert names[:10] == [
        "clip_t",
        "clip_i",
        "dino_i",
        "r_clip",
        "r_dino",
        "temporal_consistency",
        "subject_consistency",
        "dynamic_degree",
        "miou",
        "cd",
    ]
    assert {
        "attr_colour",
        "attr_shape",
        "attr_texture",
        "attr_background",
        "motion_acc",
        "identity_match",
        "trajectory_error",
    } <= set(names)
    assert get_metric("cd").higher_is_better is False
    with pytest.raises(KeyError, match="unknown metric"):
        get_metric("nope")
    with pytest.raises(CustomvidError, match="unknown metric 'nope'"):
        evaluate_records(two_records(), ["nope"])
    for m in all_metrics():
        assert m.name and m.title and isinstance(m.requires, tuple)


def test_clip_and_dino_metrics_match_hand_computation(fake_backbone):
    a, b = two_records()
    rep = evaluate_records(
        [a, b],
        ["clip_t", "clip_i", "dino_i", "r_clip", "r_dino", "temporal_consistency", "subject_consistency"],
        clip=fake_backbone,
        dino=fake_backbone,
        detector=None,
    )
    res = rep.results
    for rec, i, text in ((a, 0, [1.0, 0, 0]), (b, 1, [0, 0, 1.0])):
        f = unit(np.stack([feat(x) for x in rec.frames]))
        assert res["clip_t"].per_video[i] == pytest.approx(cos(text, f.mean(0)))
        assert res["temporal_consistency"].per_video[i] == pytest.approx(
            np.mean([cos(f[t - 1], f[t]) for t in range(1, 5)])
        )
        sc = np.mean([(max(0, cos(f[t - 1], f[t])) + max(0, cos(f[0], f[t]))) / 2 for t in range(1, 5)])
        assert res["subject_consistency"].per_video[i] == pytest.approx(sc)
    f = unit(np.stack([feat(x) for x in a.frames]))
    assert res["clip_i"].per_video == pytest.approx([cos(feat(a.reference_images[0]), f.mean(0)), None])
    assert res["dino_i"].per_video[0] == res["clip_i"].per_video[0]
    # the crop inside each target box is pure red, exactly like the reference image
    assert res["r_clip"].per_video == [pytest.approx(1.0), None]
    assert res["r_clip"].aggregate == pytest.approx(1.0) and res["r_clip"].n == 1
    assert res["clip_i"].per_video[0] < 0.99
    assert res["clip_t"].aggregate == pytest.approx(np.mean(res["clip_t"].per_video))


def test_backbone_calls_are_batched_across_videos(fake_backbone):
    a, b = two_records()  # 10 frames in all
    evaluate_records(
        [a, b], ["clip_t", "temporal_consistency"], clip=fake_backbone, batch_size=3, detector=None
    )
    assert fake_backbone.batches == [3, 3, 3, 1]  # frames embedded once for both metrics, across videos
    assert fake_backbone.text_batches == [2]


def test_missing_backbones_skip_with_reason_never_zero():
    rep = evaluate_records(
        two_records(), ["clip_t", "clip_i", "dino_i", "subject_consistency"], detector=None
    )
    for name, res in rep.results.items():
        assert res.aggregate is None and res.per_video == [None, None], name
    assert "--clip" in rep.results["clip_t"].skipped_reason
    assert "--dino" in rep.results["dino_i"].skipped_reason
    assert set(rep.skipped()) == {"clip_t", "clip_i", "dino_i", "subject_consistency"}


def test_missing_data_skips_metric(fake_backbone):
    a, b = two_records()
    rep = evaluate_records(
        [b], ["clip_i", "r_clip", "miou", "clip_t"], clip=fake_backbone, detector=FixedDetector({})
    )
    assert rep.results["clip_i"].skipped_reason == "no record has reference_images"
    assert rep.results["r_clip"].skipped_reason == "no record has reference_images"
    assert rep.results["miou"].skipped_reason == "no record has target_boxes"
    assert rep.results["clip_t"].skipped_reason is None


def test_box_metrics_with_a_pluggable_detector():
    a, b = two_records()
    b.target_boxes = np.array([[8, 4 + f, 12, 8 + f] for f in range(5)], dtype=float)
    shifted = a.target_boxes + [2, 0, 2, 0]  # 6x6 boxes moved 2 px right: IoU 4*6 / (2*36 - 24) = 0.5
    missing = b.target_boxes.copy()
    missing[1] = np.nan
    det = FixedDetector({a.frames[0].tobytes(): shifted, b.frames[0].tobytes(): missing})
    rep = evaluate_records([a, b], ["miou", "cd"], detector=det)
    assert rep.results["miou"].per_video == pytest.approx([0.5, 4 / 5])
    assert rep.results["cd"].per_video == pytest.approx([2 / math.hypot(16, 16), 1 / 5])
    assert rep.results["miou"].aggregate == pytest.approx(0.65)
    assert rep.results["miou"].details["detected_boxes"][0] == pytest.approx(shifted)


def test_box_metrics_degrade_monotonically_under_perturbation():
    frames, boxes = square_video(6, 48, box=(10, 10, 22, 22), step=(3, 2))
    det = FixedDetector({frames[0].tobytes(): boxes})
    mious, cds = [], []
    for shift in (0, 1, 2, 4, 8):
        rec = EvalRecord(frames, "x", target_boxes=boxes + [shift, shift / 2, shift, shift / 2])
        rep = evaluate_records([rec], ["miou", "cd"], detector=det)
        mious.append(rep.results["miou"].aggregate)
        cds.append(rep.results["cd"].aggregate)
    assert mious[0] == 1.0 and cds[0] == 0.0
    assert (np.diff(mious) < 0).all() and (np.diff(cds) > 0).all()


def test_dynamic_degree_per_video_and_fraction():
    moving, _ = square_video(8, 32, box=(4, 4, 14, 14), step=(2, 1))
    still, _ = square_video(8, 32, box=(4, 4, 14, 14), step=(0, 0))
    rep = evaluate_records(
        [EvalRecord(moving, "m"), EvalRecord(still, "s"), EvalRecord(moving[:1], "one")],
        ["dynamic_degree"],
        detector=None,
    )
    res = rep.results["dynamic_degree"]
    assert res.per_video == [1.0, 0.0, None]
    assert res.aggregate == 0.5
    assert len(res.details["pair_scores"][0]) == 7


def test_world_scores_with_a_fake_probe(fake_probe):
    a, b = two_records()
    fake_probe[a.frames[0].tobytes()] = dict(
        colour="red", shape="square", texture="solid", background="green", motion="down_right"
    )
    fake_probe[b.frames[0].tobytes()] = dict(
        colour="blue", shape="circle", texture="solid", background="black", motion="still"
    )
    a.subject = dict(colour="red", shape="square", texture="solid", background="green", motion="down_right")
    b.subject = dict(colour="blue", shape="square", texture="solid", motion="down")  # no background named
    names = [
        "attr_colour",
        "attr_shape",
        "attr_texture",
        "attr_background",
        "motion_acc",
        "identity_match",
        "trajectory_error",
        "miou",
    ]
    res = evaluate_records([a, b], names).results
    assert res["attr_colour"].per_video == [1.0, 1.0]
    assert res["attr_shape"].per_video == [1.0, 0.0] and res["attr_shape"].aggregate == 0.5
    assert res["attr_background"].per_video == [1.0, None]
    assert res["motion_acc"].per_video == [1.0, 0.0]
    assert res["identity_match"].per_video == [1.0, 0.0]
    assert res["attr_shape"].details["probe_values"] == ["square", "circle"]
    # a's target boxes are exactly its non-black pixels; b has neither target boxes nor a renderable spec
    assert res["trajectory_error"].per_video == [0.0, None]
    assert res["miou"].per_video == [1.0, None]  # default detector = the (fake) probe


def test_trajectory_error_from_a_subject_record_alone(fake_probe):
    from customvid.world import ClipSpec, Subject, render_clip

    spec = ClipSpec(
        Subject("square", "red"),
        "black",
        "right",
        size=14.0,
        offset=(12.0, 30.0),
        params={"distance": 30.0, "angle0": 0.0},
        frames=8,
    )
    clip = render_clip(spec)
    rec = EvalRecord(clip.frames, spec.caption, subject=spec.to_dict())
    res = evaluate_records([rec], ["trajectory_error"]).results["trajectory_error"]
    assert res.per_video[0] < 0.02  # anti-aliased pixel boxes vs sub-pixel ground truth
    assert res.details["target_boxes"][0] == pytest.approx(clip.boxes, abs=1e-4)


def test_probe_unavailable_skips_world_metrics(monkeypatch):
    import customvid.metrics.detector as det

    monkeypatch.setattr(det, "probe_available", lambda: "the world probe is not available: test")
    a, _ = two_records()
    a.subject = {"colour": "red"}
    res = evaluate_records([a], ["attr_colour", "miou"]).results
    assert res["attr_colour"].skipped_reason == "the world probe is not available: test"
    assert res["miou"].skipped_reason.startswith("default detector unavailable")
    assert (
        evaluate_records([a], ["miou"], detector=None).results["miou"].skipped_reason
        == "no box detector given"
    )


def test_custom_metric_objects_plug_in():
    class FrameCount:
        name, title, requires, higher_is_better = "frames", "Frames", (), True

        def compute(self, records, ctx):
            return MetricResult.from_values(self.name, [r.num_frames for r in records])

    rep = evaluate_records(two_records(), [FrameCount()], detector=None)
    assert rep.results["frames"].per_video == [5.0, 5.0] and rep.results["frames"].aggregate == 5.0


def test_record_validation():
    frames, boxes = square_video(3, 16)
    with pytest.raises(ValueError, match="one box per frame"):
        EvalRecord(frames, "x", target_boxes=boxes[:2])
    with pytest.raises(ValueError, match="uint8"):
        EvalRecord(frames.astype(np.float32), "x")
    with pytest.raises(ValueError, match=r"\[F, H, W, 3\]"):
        EvalRecord(frames[..., :2], "x")
    ctx = EvalContext([EvalRecord(frames, "x")], detector=None)
    with pytest.raises(ValueError, match="not part of this evaluation"):
        ctx.image_features("clip", "frames", EvalRecord(frames, "y"))


def test_detector_resolution():
    from customvid.metrics.detector import ProbeDetector, resolve_detector

    assert isinstance(resolve_detector("probe"), ProbeDetector)
    assert isinstance(resolve_detector("customvid.metrics.detector:ProbeDetector"), ProbeDetector)
    assert resolve_detector(None) is None
    with pytest.raises(CustomvidError, match="cannot import detector"):
        resolve_detector("customvid.metrics.detector:Nope")
    with pytest.raises(CustomvidError, match="neither 'probe' nor"):
        resolve_detector("yolo")
    with pytest.raises(CustomvidError, match="no detect"):
        evaluate_records(two_records(), ["miou"], detector=object())


def test_progress_bars_do_not_change_results(fake_backbone, capsys):
    recs = two_records()
    quiet = evaluate_records(
        recs, ["clip_t", "dynamic_degree"], clip=fake_backbone, batch_size=2, detector=None
    )
    loud = evaluate_records(
        recs, ["clip_t", "dynamic_degree"], clip=fake_backbone, batch_size=2, detector=None, progress=True
    )
    assert quiet.aggregates() == loud.aggregates()
    assert "clip frames" in capsys.readouterr().err


def test_identity_match_from_reference_images(fake_probe):
    a, b = two_records()
    refs = [np.full((8, 8, 3), k, np.uint8) for k in (1, 2, 3)]
    star = dict(shape="star", colour="red", texture="solid")
    fake_probe[refs[0].tobytes()] = star
    fake_probe[refs[1].tobytes()] = dict(star, colour="orange")  # outvoted
    fake_probe[refs[2].tobytes()] = star
    fake_probe[a.frames[0].tobytes()] = star
    fake_probe[b.frames[0].tobytes()] = dict(star, shape="circle")
    a.reference_images, b.reference_images = refs, refs
    res = evaluate_records([a, b], ["identity_match"]).results["identity_match"]
    assert res.per_video == [1.0, 0.0]
    assert res.details["reference_identity"][0] == star
    # a subject record naming the identity takes precedence over the references
    b.subject = dict(shape="circle", colour="red", texture="solid")
    assert evaluate_records([a, b], ["identity_match"]).results["identity_match"].per_video == [1.0, 1.0]
    c = EvalRecord(a.frames, "x")
    assert evaluate_records([c], ["identity_match"]).results["identity_match"].skipped_reason == (
        "no record has a subject attribute record or reference images"
    )
