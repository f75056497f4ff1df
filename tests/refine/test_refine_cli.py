"""`customvid refine`: every bad input fails in one line before the model loads; both modes end to end."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

import customvid.models
from customvid.cli import main
from customvid.io import read_video, write_video
from customvid.refine import crop_squares, smooth_boxes
from customvid.refine.region import DEFAULT_MARGIN
from customvid.world import render_clip, spec_from_caption

PROMPT = "a red circle moving right on a blue background"


@pytest.fixture(scope="module")
def video(tmp_path_factory):
    """A lossless 8-frame 64 px world clip (PNG folder) and its boxes."""
    clip = render_clip(spec_from_caption(PROMPT, frames=8))
    path = tmp_path_factory.mktemp("refine") / "clip"
    write_video(path, clip.frames, fps=8)
    return path, clip


def _args(video_path, out, *extra):
    return ["refine", "--video", str(video_path), "--prompt", PROMPT, "--out", str(out), "--steps", "2", *extra]


@pytest.fixture
def no_model(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("the model was loaded")

    monkeypatch.setattr(customvid.models, "load_components", refuse)


def _bad_boxes(tmp_path):
    path = tmp_path / "boxes.json"
    path.write_text(json.dumps({"boxes": [[0, 0, 4, 4]] * 3, "units": "pixels"}))
    return str(path)


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("missing video", "video not found"),
        ("unreadable video", "cannot read video"),
        ("existing out", "exists; pass --overwrite"),
        ("strength 0", r"--strength must be in \(0, 1\]"),
        ("strength 1.5", r"--strength must be in \(0, 1\]"),
        ("bad boxes", "3 boxes for a video of 8 frames"),
        ("unknown mode", "unknown --mode 'zoom'"),
        ("unknown detector", "unknown --detector 'yolo'"),
        ("bad out format", "unsupported video format '.avi'"),
        ("no subject", "found no subject in any frame"),
        ("bad noise", "noise"),
    ],
)
def test_bad_input_fails_in_one_line_before_the_model_loads(video, tmp_path, capsys, no_model, case, message):
    path, _ = video
    out = tmp_path / "out"
    args = {
        "missing video": _args(tmp_path / "nope.mp4", out, "--mode", "region"),
        "unreadable video": _args(tmp_path / "junk.mp4", out, "--mode", "region"),
        "existing out": _args(path, path, "--mode", "tiled"),
        "strength 0": _args(path, out, "--mode", "region", "--strength", "0"),
        "strength 1.5": _args(path, out, "--mode", "tiled", "--strength", "1.5"),
        "bad boxes": _args(path, out, "--mode", "region", "--detector", _bad_boxes(tmp_path)),
        "unknown mode": _args(path, out, "--mode", "zoom"),
        "unknown detector": _args(path, out, "--mode", "region", "--detector", "yolo"),
        "bad out format": _args(path, tmp_path / "out.avi", "--mode", "region"),
        "no subject": _args(tmp_path / "black", out, "--mode", "region"),
        "bad noise": _args(path, out, "--mode", "region", "--noise", "pink"),
    }[case]
    (tmp_path / "junk.mp4").write_bytes(b"not a video")
    write_video(tmp_path / "black", np.zeros((8, 64, 64, 3), np.uint8))
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith("customvid: error: ") and err.count("\n") == 1, err
    assert re.search(message, err), err
    assert not out.exists()


def test_region_end_to_end_is_reproducible_and_keeps_the_background(video, tiny_model_dir, tmp_path, capsys):
    path, clip = video
    boxes = tmp_path / "boxes.json"
    boxes.write_text(json.dumps({"boxes": clip.boxes.tolist(), "units": "pixels"}))
    outs = [tmp_path / "a", tmp_path / "b"]
    for out in outs:
        args = _args(path, out, "--mode", "region", "--detector", str(boxes), "--model", str(tiny_model_dir))
        assert main(args) == 0
    assert capsys.readouterr().out.split() == [str(p) for p in outs]
    a, b = read_video(outs[0]).frames, read_video(outs[1]).frames
    np.testing.assert_array_equal(a, b)
    assert a.shape == clip.frames.shape
    changed = (a != clip.frames).any(axis=-1)
    crops = np.zeros_like(changed)
    for f, (x0, y0, side) in enumerate(crop_squares(smooth_boxes(clip.boxes), DEFAULT_MARGIN, 64, 64)):
        crops[f, y0 : y0 + side, x0 : x0 + side] = True
    assert changed.any() and not (changed & ~crops).any()  # nothing outside the crop squares moved


def test_tiled_end_to_end_doubles_the_size(tiny_model_dir, tmp_path, capsys):
    src, out = tmp_path / "small.gif", tmp_path / "big.mp4"
    write_video(src, render_clip(spec_from_caption(PROMPT, frames=3, width=32, height=32)).frames, fps=5)
    assert main(_args(src, out, "--mode", "tiled", "--model", str(tiny_model_dir), "--strength", "0.3")) == 0
    assert read_video(out).frames.shape == (3, 64, 64, 3)
    assert main(_args(src, out, "--mode", "tiled", "--model", str(tiny_model_dir), "--overwrite")) == 0
