"""The weight-free segmenters on rendered world images, the common interface and mask IoU.

Bars come from `customvid bench masks` (64 px, clean): border 0.970 mean / 0.778 min, grabcut 0.851 / 0.647 over
66 images. The 16 images here score border 0.970 / 0.901 and grabcut 0.852 / 0.682; the bars sit below both so
small changes pass, while a method that loses a subject or swallows the background fails.
"""

import numpy as np
import pytest

from customvid.benchmarks.masks import bench_images
from customvid.errors import CustomvidError
from customvid.segmentation import AUTO, SEGMENTERS, WEIGHT_FREE, mask_iou, mask_ious, segment


@pytest.fixture(scope="module")
def world64():
    cases = bench_images(64, n_refs=2, n_train=8, seed=0)  # 4 held-out subjects x 2 + 8 train frames
    return np.stack([c["image"] for c in cases]), np.stack([c["mask"] for c in cases])


@pytest.mark.parametrize("method, mean_bar, min_bar", [("border", 0.93, 0.75), ("auto", 0.93, 0.75),
                                                       ("grabcut", 0.75, 0.5)])
def test_segmenter_reaches_measured_iou(world64, method, mean_bar, min_bar):
    images, truth = world64
    ious = mask_ious(segment(images, method), truth)
    assert ious.mean() >= mean_bar and ious.min() >= min_bar, (method, ious.round(3))


def test_border_beats_grabcut_and_is_auto(world64):
    images, truth = world64
    assert AUTO == "border"
    assert mask_iou(segment(images, "border"), truth) > mask_iou(segment(images, "grabcut"), truth)


def test_border_at_256px_textured_subjects():
    cases = bench_images(256, n_refs=1, n_train=0, seed=0)  # checkered, ring (a hole), spotted, banded
    images, truth = np.stack([c["image"] for c in cases]), np.stack([c["mask"] for c in cases])
    ious = mask_ious(segment(images, "border"), truth)
    assert ious.min() >= 0.95, ious.round(3)  # measured 0.998 mean on the 24 held-out references


def test_border_ignores_a_subject_that_reaches_the_edge():
    image = np.full((64, 64, 3), 90, np.uint8)
    image[20:40, 50:64] = (230, 40, 40)  # cut by the right border: a tenth of the border band is subject
    truth = np.zeros((64, 64), bool)
    truth[20:40, 50:64] = True
    assert mask_iou(segment(image, "border"), truth) == 1.0


@pytest.mark.parametrize("method", list(WEIGHT_FREE) + ["auto"])
def test_shapes_and_dtypes(world64, method):
    images, _ = world64
    batch = segment(images[:3], method)
    assert batch.shape == (3, 64, 64) and batch.dtype == bool
    single = segment(np.ascontiguousarray(images[0, :, :48]), method)  # one non-square image
    assert single.shape == (64, 48) and single.dtype == bool


def test_large_images_are_segmented_downscaled(world64):
    images, truth = world64
    big = np.repeat(np.repeat(images[0], 10, axis=0), 10, axis=1)  # 640 px > MAX_SIDE
    mask = segment(big, "border")
    assert mask.shape == (640, 640)
    assert mask_iou(mask, np.repeat(np.repeat(truth[0], 10, axis=0), 10, axis=1)) >= 0.9


@pytest.mark.parametrize("method", list(WEIGHT_FREE))
def test_nothing_found_gives_the_whole_image(method):
    assert segment(np.full((2, 32, 32, 3), 90, np.uint8), method).all()


@pytest.mark.parametrize("method", ["otsu", "border:x", "", "clip"])
def test_unknown_method_is_a_one_line_error(method):
    with pytest.raises(CustomvidError, match="unknown segmenter") as err:
        segment(np.zeros((1, 16, 16, 3), np.uint8), method)
    assert "\n" not in str(err.value) and "clipseg:PATH" in str(err.value)
    assert "clipseg:PATH" in SEGMENTERS


@pytest.mark.parametrize("images", [np.zeros((1, 16, 16, 3), np.float32), np.zeros((16, 16), np.uint8),
                                    np.zeros((1, 16, 16, 4), np.uint8)])
def test_bad_images_are_refused(images):
    with pytest.raises(CustomvidError, match=r"uint8 RGB images \[N, H, W, 3\]"):
        segment(images)


def test_mask_iou():
    a = np.zeros((2, 4, 4), bool)
    b = a.copy()
    a[0, :2] = True  # 8 px
    b[0, :1] = True  # 4 px inside a's
    assert mask_ious(a, b).tolist() == [0.5, 1.0]  # two empty masks agree
    assert mask_iou(a, b) == 0.75 and mask_iou(a[0], b[0]) == 0.5
    with pytest.raises(CustomvidError, match="mask shapes differ"):
        mask_iou(a, b[:, :2])
