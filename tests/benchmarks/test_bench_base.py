"""`bench base`: the prompt set covers the vocabulary, scoring uses the probe, and the command runs end to end."""

import json

import numpy as np

from customvid.benchmarks.base import prompt_set, score_video, summarise
from customvid.cli import main
from customvid.world import render_clip, vocab
from customvid.world.splits import HELD_OUT_PAIRS, build_spec


def test_prompt_set_covers_every_value_and_keeps_held_out_pairs_apart():
    prompts = prompt_set()
    seen = [p for p in prompts if not p.held_out]
    assert {p.subject.colour for p in seen} == set(vocab.COLOURS)
    assert {p.subject.shape for p in seen} == set(vocab.SHAPES)
    assert {p.subject.texture for p in seen} == set(vocab.TEXTURES)
    assert {p.background for p in seen} == set(vocab.BACKGROUNDS)
    assert {p.motion for p in seen} == set(vocab.MOTIONS)
    assert not any((p.subject.colour, p.subject.shape) in HELD_OUT_PAIRS for p in seen)
    held = {(p.subject.colour, p.subject.shape) for p in prompts if p.held_out}
    assert held == HELD_OUT_PAIRS
    assert len({p.prompt for p in prompts}) == len(prompts)


def test_ground_truth_render_scores_perfectly_and_a_blank_video_scores_zero():
    p = next(p for p in prompt_set() if p.motion == "right")
    spec = build_spec(p.subject, p.motion, p.background, np.random.default_rng(0), frames=8)
    good = score_video(render_clip(spec).frames, p)
    assert {k: good[k] for k in ("colour", "shape", "texture", "background", "motion", "present_single")} == {
        "colour": 1.0,
        "shape": 1.0,
        "texture": 1.0,
        "background": 1.0,
        "motion": 1.0,
        "present_single": 1.0,
    }
    blank = score_video(np.zeros((8, 64, 64, 3), np.uint8), p)
    assert blank["present_single"] == 0.0 and blank["colour"] == 0.0


def test_summary_separates_seen_and_held_out():
    rows = [
        {
            "held_out": False,
            "motion_name": "left",
            "present_single": 1.0,
            "colour": 1.0,
            "shape": 0.0,
            "texture": 1.0,
            "background": 1.0,
            "motion": 1.0,
        },
        {
            "held_out": True,
            "motion_name": "still",
            "present_single": 1.0,
            "colour": 0.0,
            "shape": 1.0,
            "texture": 1.0,
            "background": 1.0,
            "motion": 1.0,
        },
    ]
    s = summarise(rows)
    assert s["colour"] == (1.0, 1) and s["shape"] == (0.0, 1)
    assert s["held-out pairs: colour"] == (0.0, 1) and s["held-out pairs: shape"] == (1.0, 1)
    assert s["motion (directional)"] == (1.0, 1)


def test_bench_base_cli_runs_on_a_tiny_model(tiny_model_dir, tmp_path, capsys):
    out = tmp_path / "rows.json"
    code = main(
        [
            "bench",
            "base",
            "--model",
            str(tiny_model_dir),
            "--limit",
            "2",
            "--steps",
            "2",
            "--seeds",
            "0",
            "--json",
            str(out),
            "--device",
            "cpu",
        ]
    )
    assert code == 0
    assert "| colour |" in capsys.readouterr().out
    rows = json.loads(out.read_text())["rows"]
    assert len(rows) == 2 and all(0.0 <= r["colour"] <= 1.0 for r in rows)
    assert {r["prompt"] for r in rows} == {p.prompt for p in prompt_set()[:2]}
