"""Exact masks on lossless renders (customvid.world.probe.exact): the probe's masks and boxes equal the
renderer's ground truth pixel for pixel, and nothing changes for frames that are not lossless renders."""

from __future__ import annotations

import numpy as np
import pytest

from customvid.benchmarks.probe import add_noise, mp4_roundtrip
from customvid.world import render_clip, sample_spec
from customvid.world.probe import probe_video
from customvid.world.probe.exact import exact_masks, lattice_read
from customvid.world.render import absolute_path, background_image
from customvid.world.spec import Subject
from customvid.world.splits import build_spec


def _clip(subject: Subject, background: str, motion: str = "spin", seed: int = 0):
    return render_clip(build_spec(subject, motion, background, np.random.default_rng(seed)))


def test_solid_subject_is_read_exactly_from_the_colours_alone():
    clip = _clip(Subject("star", "red"), "gray")
    bg = background_image("gray", 64, 64)
    for frame, mask in zip(clip.frames, clip.masks, strict=True):
        inside, ambiguous = lattice_read(frame, clip.spec.subject, bg)
        assert not ambiguous.any()
        assert (inside == mask).all()


def test_shade_ink_on_black_is_ambiguous_and_the_pose_search_settles_it():
    """Base-coloured ink on black: a half-covered ink pixel looks like a quarter-covered base one, so the colours
    leave pixels open; re-rendering at the searched pose gives the renderer's mask anyway."""
    clip = _clip(Subject("circle", "yellow", "striped"), "black", motion="right")
    bg = background_image("black", 64, 64)
    assert any(lattice_read(f, clip.spec.subject, bg)[1].any() for f in clip.frames)
    path = absolute_path(clip.spec)
    # start 0.1 px / 0.02 rad off the true pose, as the probe's fitted poses are
    radius = clip.spec.size / 2 * path.scale
    masks = exact_masks(clip.frames, clip.spec.subject, bg, np.stack([path.cx + 0.1, path.cy - 0.1], 1),
                        radius + 0.1, path.angle + 0.02)
    assert sorted(masks) == list(range(len(clip.frames)))
    for f, mask in masks.items():
        assert (mask == clip.masks[f]).all(), f


def test_frames_that_are_no_lossless_render_are_left_alone():
    clip = _clip(Subject("square", "blue"), "green")
    bg = background_image("green", 64, 64)
    noisy = add_noise(clip.frames, np.random.default_rng(0), sigma=2.0)
    assert lattice_read(noisy[0], clip.spec.subject, bg) is None
    wrong_colour = Subject("square", "purple")
    assert lattice_read(clip.frames[0], wrong_colour, bg) is None


@pytest.mark.parametrize("split", ["train", "composition", "subjects", "motions"])
def test_probe_masks_and_boxes_equal_the_renderer_on_lossless_renders(split):
    for i in range(3):
        clip = render_clip(sample_spec(split, i, seed=6))
        p = probe_video(clip.frames)
        assert (p.masks == clip.masks).all(), (split, i)
        np.testing.assert_array_equal(np.nan_to_num(p.boxes, nan=-1), np.nan_to_num(clip.boxes, nan=-1))


def test_exact_reading_is_deterministic_and_mp4_keeps_the_fitted_masks():
    clip = _clip(Subject("heart", "white", "dotted"), "gray", motion="grow")
    a, b = probe_video(clip.frames), probe_video(clip.frames)
    assert (a.masks == b.masks).all()
    # after compression no frame is a lossless render: the masks are the fitted outline's, close but not exact
    p = probe_video(mp4_roundtrip(clip.frames))
    inter = (p.masks & clip.masks).sum()
    assert inter / (p.masks | clip.masks).sum() > 0.8
