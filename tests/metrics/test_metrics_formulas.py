"""The metric formulas against values computed by hand on small arrays."""

from __future__ import annotations

import math

import numpy as np
import pytest

from customvid.metrics.boxes import box_centres, box_iou, centroid_distance, crop_box
from customvid.metrics.cd import video_centroid_distance
from customvid.metrics.dynamic_degree import (
    dynamic_threshold,
    is_dynamic,
    pair_scores,
    required_pairs,
    subsample_to_8fps,
    top_magnitude_score,
)
from customvid.metrics.miou import video_miou
from customvid.metrics.similarity import reference_video_similarity, text_video_similarity
from customvid.metrics.subject_consistency import subject_consistency_score, subject_consistency_terms
from customvid.metrics.temporal_consistency import temporal_consistency_score

R = 1 / math.sqrt(2)


def test_clip_t_uses_mean_of_normalised_frames():
    # frames normalise to (1,0) and (0,1); their mean (0.5, 0.5) has cosine 1/sqrt2 with the text (1,0)
    assert text_video_similarity(np.array([3.0, 0.0]), np.array([[1.0, 0.0], [0.0, 2.0]])) == pytest.approx(R)
    # un-normalised frames would give mean (0.5, 1) instead: cosine 0.447, so normalisation matters
    assert text_video_similarity(np.array([1.0, 0.0]), np.array([[10.0, 0.0], [0.0, 1.0]])) == pytest.approx(
        R
    )


def test_reference_similarity_averages_over_references():
    frames = np.array([[1.0, 0.0], [1.0, 0.0]])
    refs = np.array([[2.0, 0.0], [0.0, 5.0], [1.0, 1.0]])  # cosines 1, 0, 1/sqrt2
    assert reference_video_similarity(refs, frames) == pytest.approx((1 + 0 + R) / 3)
    assert reference_video_similarity(np.array([1.0, 0.0]), frames) == pytest.approx(1.0)  # one ref, 1-D


def test_temporal_consistency_consecutive_pairs():
    feats = np.array([[1.0, 0.0], [1.0, 1.0], [0.0, 3.0], [0.0, -1.0]])  # cos: 1/sqrt2, 1/sqrt2, -1
    assert temporal_consistency_score(feats) == pytest.approx((R + R - 1) / 3)
    with pytest.raises(ValueError):
        temporal_consistency_score(feats[:1])


def test_subject_consistency_vbench_formula():
    feats = np.array([[1.0, 0.0], [1.0, 1.0], [0.0, 1.0]])
    # t=2: (cos(f1,f2) + cos(f1,f2)) / 2 = 1/sqrt2 ; t=3: (cos(f2,f3) + cos(f1,f3)) / 2 = (1/sqrt2 + 0) / 2
    assert subject_consistency_terms(feats) == pytest.approx([R, R / 2])
    assert subject_consistency_score(feats) == pytest.approx((R + R / 2) / 2)
    # negative cosines are clipped at 0: f2 = -f1 gives 0, not -1
    assert subject_consistency_score(np.array([[1.0, 0.0], [-1.0, 0.0]])) == 0.0


def test_box_iou_by_hand():
    a = np.array([[0, 0, 2, 2], [0, 0, 2, 2], [0, 0, 2, 2], [np.nan] * 4])
    b = np.array([[1, 1, 3, 3], [0, 0, 2, 2], [5, 5, 6, 6], [0, 0, 2, 2]])
    assert box_iou(a, b) == pytest.approx([1 / 7, 1.0, 0.0, 0.0])


def test_centroid_distance_normalised_by_diagonal():
    # a 3x4 frame has diagonal 5
    assert box_centres(np.array([[0, 0, 2, 4]]))[0] == pytest.approx([1, 2])
    d = centroid_distance(
        np.array([[0, 0], [0, 0], [np.nan, np.nan]]), np.array([[3, 4], [1.5, 2], [1, 1]]), 3, 4
    )
    assert d == pytest.approx([1.0, 0.5, 1.0])  # missing detection = maximum = 1


def test_video_miou_and_cd_skip_frames_without_target():
    target = np.array([[0, 0, 2, 2], [np.nan] * 4, [0, 0, 2, 2]], dtype=float)
    detected = np.array([[1, 1, 3, 3], [0, 0, 9, 9], [np.nan] * 4])
    assert video_miou(detected, target) == pytest.approx((1 / 7 + 0) / 2)
    # frame 0: centres (2,2) vs (1,1) on a 10x10 frame: sqrt2 / sqrt200 = 0.1; frame 2 missing: 1
    assert video_centroid_distance(detected, target, 10, 10) == pytest.approx((0.1 + 1.0) / 2)
    assert video_miou(detected, np.full((3, 4), np.nan)) is None


def test_crop_box_rounds_outwards_and_clips():
    frame = np.arange(6 * 8 * 3, dtype=np.uint8).reshape(6, 8, 3)
    assert crop_box(frame, np.array([1.5, 2.2, 4.1, 3.0])).shape == (1, 4, 3)  # cols 1..4, row 2
    assert np.array_equal(crop_box(frame, np.array([1.5, 2.2, 4.1, 3.0])), frame[2:3, 1:5])
    assert crop_box(frame, np.array([-5, -5, 100, 100])).shape == (6, 8, 3)
    assert crop_box(frame, np.array([7.9, 5.9, 7.95, 5.95])).shape == (1, 1, 3)


def test_dynamic_degree_rule():
    flow = np.zeros((10, 10, 2), np.float32)
    flow[0, :5] = (3.0, 4.0)  # five magnitudes of 5 = the top 5% of 100 pixels
    assert top_magnitude_score(flow) == pytest.approx(5.0)
    flow[0, 5] = (6.0, 8.0)  # top 5 are now 10, 5, 5, 5, 5
    assert top_magnitude_score(flow) == pytest.approx(6.0)
    assert dynamic_threshold(64, 128) == pytest.approx(1.5)
    assert [required_pairs(n) for n in (16, 8, 10, 6, 2, 1)] == [4, 2, 2, 2, 1, 1]  # VBench round, >= 1
    assert is_dynamic([2.0, 2.0, 0.0, 0.0, 0.0, 0.0, 0.0], 8, 64, 64)  # 2 pairs above 1.5, 2 needed
    assert not is_dynamic([2.0, 1.5, 0.0, 0.0, 0.0, 0.0, 0.0], 8, 64, 64)  # "exceed": 1.5 is not above 1.5
    assert list(range(24))[::3] == list(subsample_to_8fps(np.arange(24), 24.0))
    assert len(subsample_to_8fps(np.arange(16), 8.0)) == 16


def test_farneback_flow_sees_motion_not_stillness():
    rng = np.random.default_rng(0)
    texture = (rng.random((96, 96)) * 255).astype(np.uint8)
    texture = np.repeat(np.repeat(texture[::4, ::4], 4, 0), 4, 1)  # blobs Farneback can track
    moving = np.stack([np.stack([np.roll(texture, 3 * f, axis=1)[16:80, 16:80]] * 3, -1) for f in range(6)])
    still = np.stack([moving[0]] * 6)
    scores = pair_scores(moving)
    assert min(scores) == pytest.approx(3.0, abs=0.3)  # 3 px/frame, above the 1.5 px threshold
    assert max(pair_scores(still)) < 0.1  # (Farneback is not exactly 0 on identical frames)
