"""`customvid world ...`: vocab, render (+ --record, --contact-sheet), dataset, references."""

from __future__ import annotations

import json

import numpy as np
import pytest

from customvid.cli import main
from customvid.io import read_image, read_video
from customvid.world import (
    CUSTOM_MOTIONS,
    CUSTOM_SUBJECTS,
    HELD_OUT_PAIRS,
    SPLITS,
    TRAJECTORIES,
    render_clip,
    sample_spec,
    spec_from_caption,
    vocab,
)
from customvid.world.dataset import read_manifest

PROMPT = "a green striped star moving diagonally up and right on a gradient background"


def run(capsys, *argv):
    rc = main(["world", *map(str, argv)])
    out, err = capsys.readouterr()
    return rc, out, err


def test_vocab_is_json(capsys):
    rc, out, _ = run(capsys, "vocab")
    assert rc == 0
    v = json.loads(out)
    assert v["colours"]["red"] == list(vocab.COLOURS["red"])
    assert v["shapes"] == vocab.SHAPES and v["textures"] == vocab.TEXTURES
    assert v["backgrounds"]["all"] == vocab.BACKGROUNDS
    assert v["backgrounds"]["plain"]["gray"] == list(vocab.PLAIN_BACKGROUNDS["gray"])
    assert v["motions"] == {m: vocab.MOTION_PHRASES[m] for m in vocab.MOTIONS}
    assert v["novel"]["colours"] == {"teal": list(vocab.NOVEL_COLOURS["teal"])}
    assert v["novel"]["shapes"] == vocab.NOVEL_SHAPES and v["novel"]["textures"] == vocab.NOVEL_TEXTURES
    assert set(v["novel"]["motions"]) == set(vocab.NOVEL_MOTIONS)
    assert {tuple(p) for p in v["held_out_pairs"]} == HELD_OUT_PAIRS
    assert set(v["custom_subjects"]) == set(CUSTOM_SUBJECTS)
    assert v["custom_subjects"]["teal_ring"]["phrase"] == "teal ring"
    assert v["custom_motions"] == CUSTOM_MOTIONS
    assert list(v["trajectories"]) == TRAJECTORIES
    assert list(v["splits"]) == SPLITS and all(len(d) > 20 for d in v["splits"].values())


def test_render_prompt_mp4_record_and_sheet(tmp_path, capsys):
    out, record, sheet = tmp_path / "clip.mp4", tmp_path / "meta" / "clip.json", tmp_path / "sheet.png"
    rc, stdout, _ = run(capsys, "render", "--prompt", PROMPT, "--seed", 3, "--out", out, "--record", record,
                        "--contact-sheet", sheet)
    assert rc == 0 and str(out) in stdout
    clip = render_clip(spec_from_caption(PROMPT, seed=3))
    video = read_video(out)
    assert video.frames.shape == clip.frames.shape == (16, 64, 64, 3)
    assert video.fps == pytest.approx(8.0)
    assert np.abs(video.frames.astype(int) - clip.frames).mean() < 4  # H.264: close, not exact
    assert read_image(sheet).shape[0] > 64

    rec = json.loads(record.read_text())
    assert rec["video"] == "../clip.mp4"  # relative to the record's folder
    assert rec["prompt"] == PROMPT
    assert rec["subject"] == json.loads(json.dumps(clip.spec.to_dict()))
    assert np.array_equal(np.float32(rec["target_boxes"]), clip.boxes)
    (loaded,) = read_manifest(record)
    assert loaded["video"] == str(out.resolve())


def test_render_record_validates_for_evaluation(tmp_path, capsys):
    manifest = pytest.importorskip("customvid.metrics.manifest")
    record = tmp_path / "r.jsonl"
    rc, _, _ = run(capsys, "render", "--prompt", PROMPT, "--out", tmp_path / "v" / "c.mp4",
                   "--record", record, "--frames", 6)
    assert rc == 0
    (r,) = manifest.load_manifest(record)
    assert r.num_frames == 6 and r.target_boxes.shape == (6, 4) and r.prompt == PROMPT
    assert r.subject["motion"] == "up_right"


def test_render_split_index_to_frame_folder(tmp_path, capsys):
    out = tmp_path / "frames"
    rc, _, _ = run(capsys, "render", "--split", "motions", "--index", 4, "--seed", 2, "--out", out,
                   "--frames", 5, "--size", "48x40", "--fps", 4, "--record", tmp_path / "r.json")
    assert rc == 0
    clip = render_clip(sample_spec("motions", 4, 2, 5, 48, 40, 4.0))
    video = read_video(out)
    assert np.array_equal(video.frames, clip.frames)  # PNG frames are lossless
    assert video.fps == 4.0
    rec = json.loads((tmp_path / "r.json").read_text())
    assert (rec["split"], rec["index"], rec["seed"], rec["video"]) == ("motions", 4, 2, "frames")


def test_render_refuses_to_overwrite(tmp_path, capsys):
    out = tmp_path / "c.gif"
    assert run(capsys, "render", "--prompt", PROMPT, "--out", out, "--frames", 2)[0] == 0
    before = out.read_bytes()
    rc, _, err = run(capsys, "render", "--prompt", PROMPT, "--out", out, "--frames", 2, "--seed", 1)
    assert rc == 2 and "already exists" in err and "--overwrite" in err
    assert out.read_bytes() == before
    rc, _, _ = run(capsys, "render", "--prompt", PROMPT, "--out", out, "--frames", 2, "--seed", 1,
                   "--overwrite")
    assert rc == 0 and out.read_bytes() != before


@pytest.mark.parametrize("args, message", [
    (["--prompt", "a red square moving left on a pink background"], "no background"),
    (["--prompt", "a magenta square moving left on a black background"], "no subject"),
    (["--prompt", "a red square wobbling on a black background"], "no motion"),
    (["--split", "nope"], "unknown split 'nope'"),
    (["--split", "train", "--index", "-1"], "--index"),
    (["--prompt", PROMPT, "--frames", "0"], "--frames"),
    (["--prompt", PROMPT, "--size", "4"], "too small"),
    (["--prompt", PROMPT, "--size", "big"], "bad --size"),
    (["--prompt", PROMPT, "--fps", "0"], "--fps"),
])
def test_render_bad_input(tmp_path, capsys, args, message):
    out = tmp_path / "sub" / "c.mp4"
    rc, stdout, err = run(capsys, "render", *args, "--out", out)
    assert rc == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("customvid: error:") and message in lines[0]
    assert not out.exists() and not out.parent.exists()  # nothing written, no folder created


def test_render_bad_output_paths(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    rc, _, err = run(capsys, "render", "--prompt", PROMPT, "--out", blocker / "c.mp4")
    assert rc == 2 and "cannot write video" in err and len(err.strip().splitlines()) == 1
    rc, _, err = run(capsys, "render", "--prompt", PROMPT, "--out", tmp_path / "c.avi")
    assert rc == 2 and "unsupported video format" in err
    rc, _, err = run(capsys, "render", "--prompt", PROMPT, "--out", tmp_path / "c.mp4", "--record",
                     tmp_path / "c.mp4")
    assert rc == 2 and "different paths" in err
    rc, _, err = run(capsys, "render", "--prompt", PROMPT, "--out", tmp_path / "c.mp4", "--contact-sheet",
                     tmp_path / "s.txt")
    assert rc == 2 and "contact sheet" in err
    assert not (tmp_path / "c.mp4").exists()


def test_dataset_command(tmp_path, capsys):
    out = tmp_path / "ds"
    argv = ["dataset", "--split", "composition", "--n", 2, "--out", out, "--frames", 3, "--size", 32,
            "--format", "npz", "--no-progress"]
    rc, stdout, _ = run(capsys, *argv)
    assert rc == 0 and "2 clips" in stdout
    argv[4] = 3  # resume to 3
    rc, stdout, _ = run(capsys, *argv)
    assert rc == 0 and "3 clips" in stdout
    records = read_manifest(out)
    assert [r["index"] for r in records] == [0, 1, 2]
    assert all(tuple(r["subject"][k] for k in ("colour", "shape")) in HELD_OUT_PAIRS for r in records)
    rc, _, err = run(capsys, *argv, "--seed", 1)
    assert rc == 2 and "already holds a dataset" in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("args, message", [
    (["--split", "nope", "--n", "2"], "unknown split"),
    (["--n", "0"], "--n must be a positive"),
    (["--n", "-1"], "--n must be a positive"),
    (["--n", "2", "--format", "webm"], "unknown dataset format"),
    (["--n", "2", "--size", "3x3"], "too small"),
])
def test_dataset_bad_input(tmp_path, capsys, args, message):
    rc, _, err = run(capsys, "dataset", *args, "--out", tmp_path / "ds", "--no-progress")
    assert rc == 2 and message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "ds").exists()


def test_dataset_out_is_a_file(tmp_path, capsys):
    (tmp_path / "f").write_text("x")
    rc, _, err = run(capsys, "dataset", "--n", 1, "--out", tmp_path / "f", "--no-progress")
    assert rc == 2 and "not a directory" in err


def test_references_command(tmp_path, capsys):
    rc, stdout, _ = run(capsys, "references", "--subject", "spotted_hexagon", "--out", tmp_path, "--n", 2)
    assert rc == 0 and "spotted_hexagon" in stdout
    assert sorted(p.name for p in (tmp_path / "spotted_hexagon").iterdir()) == [
        "ref_00.png", "ref_00_mask.png", "ref_01.png", "ref_01_mask.png", "references.jsonl"]
    rc, _, _ = run(capsys, "references", "--subject", "all", "--out", tmp_path, "--n", 2)
    assert rc == 0 and {p.name for p in tmp_path.iterdir()} == set(CUSTOM_SUBJECTS)
    rc, _, err = run(capsys, "references", "--subject", "spotted_hexagon", "--out", tmp_path, "--n", 3)
    assert rc == 2 and "--overwrite" in err
    rc, _, err = run(capsys, "references", "--subject", "purple_blob", "--out", tmp_path)
    assert rc == 2 and "unknown custom subject" in err
    rc, _, err = run(capsys, "references", "--subject", "all", "--out", tmp_path, "--n", 0)
    assert rc == 2 and "--n" in err
