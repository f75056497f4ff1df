"""`customvid bench motion` end to end on the tiny model (numbers meaningless, code path real), and its metric."""

from __future__ import annotations

import numpy as np

from customvid.benchmarks.motion import (
    EVAL_BACKGROUNDS,
    EVAL_SUBJECTS,
    TRAIN_BACKGROUNDS,
    TRAIN_SUBJECTS,
    run_composition,
    run_motion_bench,
    trajectory_similarity,
    write_training_clips,
)
from customvid.models import load_components


def test_trajectory_similarity_ignores_position_and_scale_not_shape():
    t = np.linspace(0, 1, 8)
    zig = np.stack([40 * t, 5 * np.sign(np.sin(4 * np.pi * t + 0.1))], 1)
    assert trajectory_similarity(zig * 0.5 + [10, 20], zig[None]) > 0.999
    assert trajectory_similarity(zig[::-1].copy(), zig[None]) < 0  # the same path backwards
    still = np.full((8, 2), 30.0) + np.random.default_rng(0).normal(0, 0.5, (8, 2))
    assert abs(trajectory_similarity(still, zig[None])) < 0.8
    gone = zig.copy()
    gone[:5] = np.nan
    assert np.isnan(trajectory_similarity(gone, zig[None]))


def test_evaluation_never_shows_the_training_subjects_or_backgrounds():
    assert not set(EVAL_SUBJECTS) & set(TRAIN_SUBJECTS)
    assert not {c for c, _ in EVAL_SUBJECTS} & {c for c, _ in TRAIN_SUBJECTS}
    assert not set(EVAL_BACKGROUNDS) & set(TRAIN_BACKGROUNDS)


def test_training_clips_match_their_reference_paths(tmp_path):
    from customvid.training.motion_data import load_motion_clips
    from customvid.world.probe import probe_video

    folder, refs = write_training_clips("spiral", tmp_path, n=2)
    data = load_motion_clips(folder, 64, 64, 8, 4.0, token="<pll>")
    for clip, ref in zip(data.frames, refs, strict=True):
        assert trajectory_similarity(probe_video(clip).centres, ref[None]) > 0.95


def test_bench_runs_on_the_tiny_model(tiny_model_dir, tmp_path):
    result = run_motion_bench(lambda: load_components(tiny_model_dir), tmp_path, ["zigzag"], ["paper", "LoRA r16"],
                              seeds=(0,), steps=2, train_steps=1, progress=False)
    assert set(result["summary"]) == {"paper | held-out motion", "paper | base motions, adapter on",
                                      "LoRA r16 | held-out motion", "LoRA r16 | base motions, adapter on",
                                      "base | base model, motion's phrase", "base | base motions, base model"}
    assert all(row["clips"] == len(EVAL_SUBJECTS) for row in result["summary"].values())
    sizes = {k: v["adapter_bytes"] for k, v in result["training"].items()}
    assert sizes["zigzag | LoRA r16"] < sizes["zigzag | paper"]

    small = {"steps": 1, "batch_size": 2, "prior_clips": 2, "prior_steps": 1, "sample_every": 0}
    both = run_composition(lambda: load_components(tiny_model_dir), tmp_path, "teal_ring", "zigzag", seeds=(0,),
                           steps=2, subject_overrides=small, progress=False)
    assert set(both["summary"]) == {"separate", "joint"}
    assert len(both["rows"]) == 2 * len(EVAL_BACKGROUNDS)
    assert (tmp_path / "subjects" / "teal_ring_joint_zigzag" / "adapter.json").is_file()
