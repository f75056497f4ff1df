"""Boxes files (customvid.io.boxes): per-frame boxes and keyframes, pixels and normalized, one-line errors."""

from __future__ import annotations

import json

import numpy as np
import pytest

from customvid.errors import CustomvidError
from customvid.io import parse_boxes, read_boxes


def _write(tmp_path, obj) -> str:
    path = tmp_path / "boxes.json"
    path.write_text(obj if isinstance(obj, str) else json.dumps(obj))
    return str(path)


def test_per_frame_pixel_boxes(tmp_path):
    boxes = [[1, 2, 11, 12], [3, 2, 13, 12.5], [0, 0, 64, 48]]
    out = read_boxes(_write(tmp_path, {"boxes": boxes, "units": "pixels"}), 3, 64, 48)
    assert out.dtype == float and out.shape == (3, 4)
    np.testing.assert_array_equal(out, boxes)


def test_normalized_keyframes_are_interpolated_and_held(tmp_path):
    obj = {"keyframes": {"4": [0.5, 0.5, 1.0, 1.0], "0": [0.0, 0.0, 0.5, 0.25]}, "units": "normalized"}
    out = read_boxes(_write(tmp_path, obj), 6, 40, 20)
    np.testing.assert_allclose(out[0], [0, 0, 20, 5])
    np.testing.assert_allclose(out[2], [10, 5, 30, 12.5])  # halfway from frame 0 to frame 4
    np.testing.assert_allclose(out[4], out[5])  # held after the last keyframe
    np.testing.assert_allclose(out[4], [20, 10, 40, 20])


@pytest.mark.parametrize(
    ("obj", "message"),
    [
        ({"boxes": [[0, 0, 4, 4]] * 2, "units": "pixels"}, "2 boxes for a video of 3 frames"),
        ({"boxes": [[0, 0, 4, 4], [5, 0, 5, 4], [0, 0, 4, 4]], "units": "pixels"}, "frame 1: empty box"),
        ({"boxes": [[0, 6, 4, 4]] * 3, "units": "pixels"}, "frame 0: empty box"),
        ({"boxes": [[0, 0, 4, 17]] * 3, "units": "pixels"}, "outside the 16x16 px frame"),
        ({"boxes": [[-1, 0, 4, 4]] * 3, "units": "pixels"}, "outside"),
        ({"keyframes": {"0": [0, 0, 1.5, 1]}, "units": "normalized"}, "outside the .0, 1. normalized frame"),
        ({"boxes": [[0, 0, 4, 4]] * 3, "units": "percent"}, "unknown units 'percent'"),
        ({"boxes": [[0, 0, 4, 4]] * 3}, "unknown units None"),
        ({"boxes": [[0, 0, 4]] * 3, "units": "pixels"}, r"expected \[x1, y1, x2, y2\] numbers"),
        ({"boxes": [[0, 0, "4", 4]] * 3, "units": "pixels"}, "numbers"),
        ({"units": "pixels"}, 'exactly one of "boxes"'),
        ({"boxes": [], "keyframes": {}, "units": "pixels"}, 'exactly one of "boxes"'),
        ({"keyframes": {"3": [0, 0, 4, 4]}, "units": "pixels"}, "keyframe '3' is not a frame index"),
        ({"keyframes": {"x": [0, 0, 4, 4]}, "units": "pixels"}, "keyframe 'x'"),
        ({"keyframes": {"1": [0, 0, 4, 4], "01": [0, 0, 4, 4]}, "units": "pixels"}, "repeats frame 1"),
        ({"keyframes": {}, "units": "pixels"}, "non-empty"),
        ([[0, 0, 4, 4]], "expected a JSON object"),
        ("{not json", "not valid JSON"),
    ],
)
def test_errors_are_one_line_and_name_the_file(tmp_path, obj, message):
    path = _write(tmp_path, obj)
    with pytest.raises(CustomvidError, match=message) as info:
        read_boxes(path, 3, 16, 16)
    assert "\n" not in str(info.value) and str(info.value).startswith(path)


def test_missing_file(tmp_path):
    with pytest.raises(CustomvidError, match="cannot read boxes file"):
        read_boxes(tmp_path / "nope.json", 3, 16, 16)


def test_parse_boxes_takes_an_object():
    out = parse_boxes({"boxes": [[0, 0, 1, 1]], "units": "normalized"}, 1, 8, 4)
    np.testing.assert_array_equal(out, [[0, 0, 8, 4]])
