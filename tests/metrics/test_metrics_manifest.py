"""Manifest parsing: relative paths, optional fields, and bad lines failing with their number and reason."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import square_video

from customvid.errors import CustomvidError
from customvid.io import write_image, write_video
from customvid.metrics import ManifestError, load_manifest


@pytest.fixture
def clip_dir(tmp_path):
    frames, boxes = square_video(4, 16)
    write_video(tmp_path / "videos" / "a", frames, fps=8)  # PNG folder: lossless
    write_image(tmp_path / "refs" / "r.png", frames[0])
    return tmp_path, frames, boxes


def write_manifest(path, lines):
    path.write_text("".join((x if isinstance(x, str) else json.dumps(x)) + "\n" for x in lines))
    return path


def test_good_manifest_resolves_paths_relative_to_it(clip_dir):
    root, frames, boxes = clip_dir
    boxes_json = boxes.tolist()
    boxes_json[2] = [None] * 4  # a frame without a target, as `world render --record` writes it
    boxes_json[3] = None
    m = write_manifest(
        root / "m.jsonl",
        [
            {
                "video": "videos/a",
                "prompt": "a red square",
                "reference_images": ["refs/r.png"],
                "target_boxes": boxes_json,
                "subject": {"shape": "square"},
                "extra": 1,
            },
            "",
            {"video": str(root / "videos" / "a"), "prompt": "", "id": "second"},
        ],
    )
    a, b = load_manifest(m)
    assert np.array_equal(a.frames, frames) and a.fps == 8
    assert a.id == "videos/a" and b.id == "second"
    assert a.prompt == "a red square" and a.subject == {"shape": "square"}
    assert np.array_equal(a.reference_images[0], frames[0])
    assert a.target_boxes[:2] == pytest.approx(boxes[:2]) and np.isnan(a.target_boxes[2:]).all()
    assert b.target_boxes is None and b.reference_images == [] and b.subject is None


@pytest.mark.parametrize(
    "bad_line, reason",
    [
        ('{"video": "videos/a", "prompt": "x"', "malformed JSON"),
        ('["videos/a"]', "expected a JSON object"),
        ({"prompt": "x"}, "missing 'video'"),
        ({"video": "videos/a"}, "missing 'prompt'"),
        ({"video": "videos/nope.mp4", "prompt": "x"}, "video 'videos/nope.mp4' not found"),
        (
            {"video": "videos/a", "prompt": "x", "reference_images": ["refs/missing.png"]},
            "reference image 'refs/missing.png' not found",
        ),
        (
            {"video": "videos/a", "prompt": "x", "target_boxes": [[0, 0, 1, 1]] * 3},
            "target_boxes has 3 boxes but the video has 4 frames",
        ),
        ({"video": "videos/a", "prompt": "x", "target_boxes": [[0, 0, 1]] * 4}, r"target_boxes\[0\] is not"),
        ({"video": "videos/a", "prompt": "x", "target_boxes": [[2, 0, 1, 1]] * 4}, "needs x2 > x1"),
        ({"video": "videos/a", "prompt": "x", "subject": "red"}, "'subject' must be a JSON object"),
        ({"video": "refs/r.png", "prompt": "x"}, "cannot read video"),
    ],
)
def test_bad_line_names_line_number_and_reason(clip_dir, bad_line, reason):
    root, _, _ = clip_dir
    good = {"video": "videos/a", "prompt": "fine"}
    m = write_manifest(root / "m.jsonl", [good, "", bad_line, good])
    with pytest.raises(ManifestError, match=f"m.jsonl line 3: .*{reason}") as info:
        load_manifest(m)
    assert info.value.line == 3
    assert isinstance(info.value, CustomvidError)


def test_empty_or_missing_manifest(tmp_path):
    with pytest.raises(ManifestError, match="manifest not found"):
        load_manifest(tmp_path / "nope.jsonl")
    with pytest.raises(ManifestError, match="no records"):
        load_manifest(write_manifest(tmp_path / "empty.jsonl", ["", "  "]))
