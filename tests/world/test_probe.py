"""The world probe reads rendered clips back: every vocabulary value, boxes, emptiness, degraded clips, blobs."""

from __future__ import annotations

import numpy as np
import pytest

from customvid.benchmarks.probe import (
    CONDITIONS,
    box_iou,
    degrade,
    format_probe_table,
    run_probe_benchmark,
)
from customvid.world import render_clip, sample_spec, vocab
from customvid.world.probe import VideoProbe, probe_video
from customvid.world.render import background_image
from customvid.world.spec import ClipSpec, Subject
from customvid.world.splits import build_spec


def _clip(subject: Subject, motion: str = "right", background: str = "black", seed: int = 0):
    return render_clip(build_spec(subject, motion, background, np.random.default_rng(seed)))


@pytest.mark.parametrize("colour", list(vocab.ALL_COLOURS))
def test_every_colour(colour):
    p = probe_video(_clip(Subject("square", colour), background="gray").frames)
    assert p.colour == colour and p.colour2 is None


@pytest.mark.parametrize("shape", vocab.ALL_SHAPES)
def test_every_shape(shape):
    p = probe_video(_clip(Subject(shape, "orange"), motion="down", background="blue", seed=1).frames)
    assert p.shape == shape
    assert p.frame_shapes.count(shape) >= 12  # and frame by frame, mostly


@pytest.mark.parametrize("texture", vocab.ALL_TEXTURES)
def test_every_texture_and_second_colour(texture):
    colour2 = "white" if texture in vocab.NOVEL_TEXTURES else None
    subject = Subject("circle", "blue", texture, colour2)
    p = probe_video(_clip(subject, motion="left", background="brown", seed=2).frames)
    assert (p.texture, p.colour, p.colour2) == (texture, "blue", colour2)


@pytest.mark.parametrize("background", vocab.BACKGROUNDS)
def test_every_background(background):
    p = probe_video(_clip(Subject("heart", "yellow", "dotted"), background=background, seed=3).frames)
    assert p.background == background
    assert p.shape == "heart" and p.texture == "dotted"


@pytest.mark.parametrize("motion", vocab.MOTIONS + vocab.NOVEL_MOTIONS)
def test_every_motion(motion):
    p = probe_video(_clip(Subject("triangle", "green", "striped"), motion=motion, background="tiled", seed=4).frames)
    assert p.motion == motion


def test_custom_subjects_keep_their_colour_order():
    # two-colour patterns: which colour is the ink is read from the pattern's phase, not from pixel counts
    for i in range(8):
        spec = sample_spec("subjects", i, seed=5)
        p = probe_video(render_clip(spec).frames)
        s = spec.subject
        assert (p.shape, p.texture, p.colour, p.colour2) == (s.shape, s.texture, s.colour, s.colour2)


def test_boxes_match_ground_truth():
    ious = []
    for split in ("train", "composition", "subjects", "motions"):
        for i in range(4):
            clip = render_clip(sample_spec(split, i, seed=6))
            p = probe_video(clip.frames)
            assert p.present.all()
            iou = box_iou(p.boxes, clip.boxes)
            assert iou.mean() > 0.9, (split, i, iou)
            ious.append(iou)
    assert np.concatenate(ious).mean() > 0.95


def test_fields_have_the_documented_shapes():
    clip = render_clip(sample_spec("train", 0, seed=7))
    p = probe_video(clip.frames)
    f, h, w, _ = clip.frames.shape
    assert isinstance(p, VideoProbe)
    assert p.present.shape == (f,) and p.boxes.shape == (f, 4) and p.masks.shape == (f, h, w)
    assert p.centres.shape == (f, 2) and p.scales.shape == (f,) and p.n_components.shape == (f,)
    assert len(p.frame_colours) == len(p.frame_shapes) == len(p.frame_textures) == f
    assert p.single.all()
    # masks are close to the renderer's
    inter = (p.masks & clip.masks).sum()
    assert inter / (p.masks | clip.masks).sum() > 0.9


def test_empty_video_reads_as_no_subject():
    for name in vocab.BACKGROUNDS:
        bg = np.rint(background_image(name, 64, 64)).astype(np.uint8)
        frames = np.repeat(bg[None], 16, axis=0)
        for video in (frames, degrade(frames, "combined", np.random.default_rng(0))[0]):
            p = probe_video(video)
            assert not p.present.any()
            assert (p.colour, p.shape, p.texture, p.motion) == (None, None, None, None)
            assert np.isnan(p.boxes).all() and not p.masks.any()
            assert p.background == name


def test_a_background_the_world_does_not_have_is_not_named():
    frames = np.full((8, 64, 64, 3), (150, 60, 150), np.uint8)  # plain purple: no world background
    p = probe_video(frames)
    assert p.background is None and not p.present.any()


def test_other_sizes_and_frame_counts():
    for frames, width, height in ((8, 64, 64), (16, 96, 72), (3, 48, 48)):
        clip = render_clip(sample_spec("train", 3, seed=10, frames=frames, width=width, height=height))
        p = probe_video(clip.frames)
        s = clip.spec.subject
        assert (p.colour, p.shape, p.texture, p.background) == (s.colour, s.shape, s.texture, clip.spec.background)
        assert box_iou(p.boxes, clip.boxes).mean() > 0.85
        assert p.frame_colours == [s.colour] * frames


def test_subject_leaving_some_frames_is_absent_there():
    clip = _clip(Subject("star", "red"), motion="still", background="green", seed=8)
    frames = clip.frames.copy()
    frames[5:9] = np.rint(background_image("green", 64, 64)).astype(np.uint8)
    p = probe_video(frames)
    assert not p.present[5:9].any() and p.present[:5].all() and p.present[9:].all()
    assert np.isnan(p.boxes[5:9]).all() and p.frame_shapes[6] is None
    assert p.shape == "star" and p.motion == "still"


def test_two_subjects_are_two_components():
    def still(subject: Subject, offset: tuple[float, float]) -> ClipSpec:
        return ClipSpec(subject, "gray", "still", 14.0, offset, {"angle0": 0.0}, frames=4)

    a = render_clip(still(Subject("circle", "yellow"), (16.0, 18.0)))
    b = render_clip(still(Subject("square", "blue", "striped"), (46.0, 44.0)))
    bg = np.rint(background_image("gray", 64, 64)).astype(np.uint8)
    frames = np.where((a.frames != bg).any(-1, keepdims=True), a.frames, b.frames)  # both sprites on one frame
    p = probe_video(frames)
    assert (p.n_components == 2).all()
    assert not p.single.any()
    assert probe_video(a.frames).single.all()


def test_degraded_clips_are_still_mostly_read_right():
    # 12 clips per condition: one miss costs 8%. Each degradation alone measures >= 95% at 300 clips; all of
    # them at once (blur + jitter + noise + mp4 + dropped frames) is harder, mostly for small sprites' textures.
    result = run_probe_benchmark(n_clips=12, seed=9, n_empty=2, conditions=CONDITIONS[1:])
    for condition, row in result["conditions"].items():
        combined = condition == "combined"
        for attribute in ("presence", "empty", "background", "motion", "colour", "shape", "texture"):
            floor = 0.6 if combined and attribute == "texture" else 0.75 if combined else 0.85
            assert row[attribute] >= floor, (condition, attribute, row[attribute])
        assert row["box_iou"] > (0.8 if combined else 0.9), condition
    table = format_probe_table(result)
    assert table.startswith("| condition |") and all(f"| {c} |" in table for c in CONDITIONS[1:])


def test_rejects_what_is_not_a_video():
    with pytest.raises(ValueError):
        probe_video(np.zeros((64, 64, 3), np.uint8))
    with pytest.raises(ValueError):
        degrade(np.zeros((2, 8, 8, 3), np.uint8), "fog", np.random.default_rng(0))
