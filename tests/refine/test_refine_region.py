"""Region refinement: detectors, box smoothing, crop squares, feathered paste, and the whole path on a tiny model."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from customvid.errors import CustomvidError
from customvid.refine import crop_squares, detect_boxes, feather_weights, haar_boxes, region_refine, smooth_boxes
from customvid.world import render_clip, spec_from_caption

PROMPT = "a red circle moving right on a blue background"


@pytest.fixture(scope="module")
def small(tiny_components):
    return dataclasses.replace(tiny_components, default_frames=2, default_size=(32, 32))


@pytest.fixture(scope="module")
def clip():
    return render_clip(spec_from_caption(PROMPT, frames=5, width=48, height=40))


def _track(n: int = 8) -> np.ndarray:
    x = np.arange(n, dtype=float) * 3
    return np.stack([x, x * 0 + 10, x + 8, x * 0 + 18], axis=1)


def test_smoothing_keeps_a_steady_track_and_fills_gaps():
    track = _track()
    np.testing.assert_allclose(smooth_boxes(track), track, atol=1e-9)  # odd reflection: no lag at the ends
    holes = track.copy()
    holes[[0, 3, 4]] = np.nan  # a missing first frame is held from the next, inner gaps interpolated
    filled = smooth_boxes(holes, sigma=0)
    np.testing.assert_allclose(filled[3:5], track[3:5])
    np.testing.assert_allclose(filled[0], track[1])


def test_smoothing_removes_jitter():
    track = _track(16)
    jitter = track + np.random.default_rng(0).normal(0, 2, track.shape)
    error = lambda b: np.abs(b - track).mean()  # noqa: E731
    assert error(smooth_boxes(jitter)) < 0.7 * error(jitter)


def test_no_detection_at_all_is_an_error():
    with pytest.raises(CustomvidError, match="found no subject in any frame"):
        smooth_boxes(np.full((4, 4), np.nan))


def test_crop_squares_have_one_side_and_stay_inside():
    boxes = _track()
    boxes[5, 3] = 22  # one taller box sets the side for every frame
    crops = crop_squares(boxes, 0.5, 40, 30)
    assert (crops[:, 2] == 24).all()  # 12 px box side x (1 + 2 * 0.5)
    assert (crops[:, 0] >= 0).all() and (crops[:, 0] + crops[:, 2] <= 30).all()
    assert (crops[:, 1] >= 0).all() and (crops[:, 1] + crops[:, 2] <= 40).all()
    assert crop_squares(boxes, 10, 40, 30)[0, 2] == 30  # never more than the frame
    with pytest.raises(CustomvidError, match="margin"):
        crop_squares(boxes, -0.1, 40, 30)


def test_feather_weights():
    w = feather_weights(9, 12, 3)
    assert w.shape == (9, 12) and w[4, 4:8].tolist() == [1.0] * 4 and w.min() == pytest.approx(0.25)
    np.testing.assert_allclose(w[4, :4], [0.25, 0.5, 0.75, 1.0])
    assert (feather_weights(4, 4, 0) == 1).all()


def test_probe_detector_finds_the_rendered_subject(clip):
    boxes = detect_boxes(clip.frames, "probe")
    np.testing.assert_allclose(boxes, clip.boxes, atol=1.5)


def test_unknown_detector():
    with pytest.raises(CustomvidError, match="unknown detector 'yolo'"):
        detect_boxes(np.zeros((1, 8, 8, 3), np.uint8), "yolo")


def test_haar_finds_no_face_in_the_world_or_says_why_not(clip):
    try:
        boxes = haar_boxes(clip.frames)
    except CustomvidError as err:  # OpenCV 5 no longer bundles the cascades
        assert "\n" not in str(err) and "Haar cascades" in str(err)
    else:
        assert np.isnan(boxes).all()


def test_region_refine_changes_only_the_feathered_crop(small, clip):
    # 5 frames of 48x40 px against a 2-frame 32 px model: windows and resizing happen inside
    out = region_refine(small, clip.frames, PROMPT, boxes=clip.boxes, num_inference_steps=2, seed=0)
    assert out.frames.shape == clip.frames.shape and out.frames.dtype == np.uint8
    outside = out.mask == 0
    np.testing.assert_array_equal(out.frames[outside], clip.frames[outside])
    for f, (x0, y0, side) in enumerate(out.crops):
        inside = np.zeros(out.mask.shape[1:], bool)
        inside[y0 : y0 + side, x0 : x0 + side] = True
        assert (out.mask[f][inside] > 0).all() and (out.mask[f][~inside] == 0).all()
    assert not np.array_equal(out.frames, clip.frames)
    again = region_refine(small, clip.frames, PROMPT, boxes=clip.boxes, num_inference_steps=2, seed=0)
    np.testing.assert_array_equal(again.frames, out.frames)
