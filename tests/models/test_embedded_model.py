"""The committed embedded model: loads by default and generates out of the box (the README's main job, with fewer
steps), reproducibly."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from customvid.cli import main
from customvid.io import read_image, read_video
from customvid.models import load_components
from customvid.models.components import EMBEDDED_DIR
from customvid.sampling import generate


@pytest.fixture(scope="module")
def embedded():
    assert (EMBEDDED_DIR / "customvid.json").is_file(), "the embedded model is not committed"
    return load_components()


def test_loads_by_default_as_float32(embedded):
    assert (embedded.kind, embedded.text_kind) == ("unet3d", "minilm")
    assert embedded.unet.dtype == torch.float32 and embedded.vae.dtype == torch.float32
    assert (embedded.default_frames, embedded.default_size) == (8, (64, 64))
    assert embedded.scheduler.config.prediction_type == "v_prediction"
    meta = json.loads((EMBEDDED_DIR / "customvid.json").read_text())
    assert meta["train_config"]["unet_channels"] == [32, 64, 128]
    # a trained UNet: its steps, summed along the chain of warm starts the record nests, are many
    steps, record = 0, meta
    while record is not None:
        steps, record = steps + record["unet_step"], record.get("init_model")
    assert steps >= 1000


def test_same_seed_same_video_and_seeds_differ(embedded):
    a = generate(embedded, "a red circle moving right on a black background", num_inference_steps=3, seed=0).frames
    b = generate(embedded, "a red circle moving right on a black background", num_inference_steps=3, seed=0).frames
    c = generate(embedded, "a red circle moving right on a black background", num_inference_steps=3, seed=1).frames
    assert a.shape == (1, 8, 64, 64, 3) and a.dtype == np.uint8
    assert np.array_equal(a, b) and not np.array_equal(a, c)


def test_main_job_command_writes_video_and_contact_sheet(tmp_path, capsys):
    out, sheet = tmp_path / "clip.mp4", tmp_path / "clip.png"
    argv = ["generate", "--prompt", "a red circle moving right on a black background", "--seed", "0"]
    assert main([*argv, "--out", str(out), "--contact-sheet", str(sheet), "--steps", "3"]) == 0
    video = read_video(out)
    assert video.frames.shape == (8, 64, 64, 3)
    assert read_image(sheet).ndim == 3
    capsys.readouterr()


def test_shipped_zeroshot_modules_put_the_subject_in_its_boxes(tmp_path):
    """`generate --subject-image --boxes` on the embedded model uses the shipped zero-shot modules by default: the
    same prompt and seed with the boxes on the left or on the right puts the subject on that side."""
    from customvid.io import write_image
    from customvid.world import render_clip, spec_from_caption
    from customvid.world.probe import probe_video

    assert (EMBEDDED_DIR / "zeroshot" / "adapter.json").is_file(), "the zero-shot modules are not shipped"
    clip = render_clip(spec_from_caption("a yellow striped square staying still on a black background", frames=8))
    write_image(tmp_path / "subject.png", clip.frames[0])
    centres = {}
    for side, x1 in (("left", 4), ("right", 40)):
        (tmp_path / f"{side}.json").write_text(json.dumps({"boxes": [[x1, 22, x1 + 20, 42]] * 8, "units": "pixels"}))
        out = tmp_path / side
        assert main(["generate", "--prompt", "a square on a blue background", "--seed", "0", "--steps", "12",
                     "--subject-image", str(tmp_path / "subject.png"), "--boxes", str(tmp_path / f"{side}.json"),
                     "--out", str(out)]) == 0
        centres[side] = np.nanmean(probe_video(read_video(out).frames).centres[:, 0])
    assert centres["left"] < 28 < 36 < centres["right"]
